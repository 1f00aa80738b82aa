"""The catalogue's pure rules: provider eligibility, the course workflow, versions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from services.catalogue.domain import courses, providers
from services.catalogue.domain.errors import CatalogueError

TODAY = date(2026, 6, 1)


def provider(
    status: providers.ProviderStatus = "accredited", days_valid: int = 30
) -> providers.Provider:
    return providers.Provider("p1", status, "Qualiopi", TODAY + timedelta(days=days_valid))


def test_eligible_only_when_accredited_and_quality_assurance_valid() -> None:
    assert providers.is_eligible(provider(), TODAY)
    assert providers.is_eligible(provider(days_valid=0), TODAY)  # the last valid day counts
    assert not providers.is_eligible(provider(days_valid=-1), TODAY)
    assert providers.ineligibility(provider(days_valid=-1), TODAY) == "quality_assurance_expired"
    assert providers.ineligibility(provider("registered"), TODAY) == "not_accredited"
    assert providers.ineligibility(provider("suspended"), TODAY) == "suspended"
    # the same provider lapses by itself as days pass
    p = provider(days_valid=10)
    assert providers.is_eligible(p, TODAY + timedelta(days=10))
    assert not providers.is_eligible(p, TODAY + timedelta(days=11))


def test_accredit_and_suspend() -> None:
    accredited = providers.accredit(provider("registered"), TODAY, None, None)
    assert accredited.status == "accredited"
    with pytest.raises(CatalogueError) as err:
        providers.accredit(accredited, TODAY, None, None)
    assert err.value.code == "already_accredited"
    renewed = providers.accredit(accredited, TODAY, "ISO 21001", TODAY + timedelta(days=900))
    assert renewed.qa_scheme == "ISO 21001" and renewed.qa_valid_until == TODAY + timedelta(
        days=900
    )
    with pytest.raises(CatalogueError) as err:
        providers.accredit(provider("suspended", days_valid=-5), TODAY, None, None)
    assert err.value.kind == "unprocessable"
    assert providers.suspend(accredited).status == "suspended"
    with pytest.raises(CatalogueError):
        providers.suspend(providers.suspend(accredited))


def course(status: courses.CourseStatus) -> courses.Course:
    return courses.Course("c1", "p1", status, 1)


@pytest.mark.parametrize(
    ("status", "action", "target"),
    [
        ("draft", "submit", "submitted"),
        ("rejected", "submit", "submitted"),
        ("withdrawn", "submit", "submitted"),
        ("submitted", "approve", "approved"),
        ("submitted", "reject", "rejected"),
        ("submitted", "withdraw", "withdrawn"),
        ("approved", "withdraw", "withdrawn"),
    ],
)
def test_allowed_transitions(
    status: courses.CourseStatus, action: courses.Action, target: str
) -> None:
    assert courses.transition(course(status), action) == target


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("draft", "approve"),
        ("draft", "reject"),
        ("draft", "withdraw"),
        ("submitted", "submit"),
        ("approved", "approve"),
        ("approved", "submit"),
        ("approved", "reject"),
        ("withdrawn", "approve"),
        ("withdrawn", "withdraw"),
        ("rejected", "approve"),
        ("rejected", "withdraw"),
    ],
)
def test_forbidden_transitions_are_conflicts(
    status: courses.CourseStatus, action: courses.Action
) -> None:
    with pytest.raises(CatalogueError) as err:
        courses.transition(course(status), action)
    assert err.value.kind == "conflict"


def test_only_the_owner_acts() -> None:
    courses.check_owner(course("draft"), "p1")
    with pytest.raises(CatalogueError) as err:
        courses.check_owner(course("draft"), "p2")
    assert err.value.kind == "forbidden"


CONTENT = {"title": "Welding", "price": 1000, "sessions": [{"seats": 3}]}


def test_a_change_makes_the_next_version() -> None:
    revision = courses.revise(course("draft"), CONTENT, {"title": "Welding II"})
    assert revision is not None
    assert revision.version == 2 and revision.status == "draft"
    assert revision.changed == ("title",)
    assert revision.content == {**CONTENT, "title": "Welding II"}
    assert courses.revise(course("draft"), CONTENT, {"title": "Welding"}) is None


def test_approved_course_goes_back_to_review_on_price_or_content_change() -> None:
    for field, value in (("price", 2000), ("title", "Cheaper welding")):
        revision = courses.revise(course("approved"), CONTENT, {field: value})
        assert revision is not None and revision.status == "submitted"
    sessions_only = courses.revise(course("approved"), CONTENT, {"sessions": [{"seats": 4}]})
    assert sessions_only is not None and sessions_only.status == "approved"
    with pytest.raises(CatalogueError) as err:
        courses.revise(course("submitted"), CONTENT, {"price": 5})
    assert err.value.code == "under_review"


NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def sess(sid: str, start_days: float, days: float = 5, seats: int = 10) -> dict[str, Any]:
    start = NOW + timedelta(days=start_days)
    return {
        "session_id": sid,
        "start": start.isoformat(),
        "end": (start + timedelta(days=days)).isoformat(),
        "seats": seats,
    }


def code_of(
    current: list[dict[str, Any]], revised: list[dict[str, Any]], enrolled: tuple[str, ...] = ()
) -> str:
    with pytest.raises(CatalogueError) as err:
        courses.check_sessions(current, revised, NOW, frozenset(enrolled))
    return str(err.value.code)


def test_sessions_added_or_moved_must_start_after_now() -> None:
    running, ahead = sess("s1", -1, days=10), sess("s2", 20)
    current = [running, ahead]
    # unchanged, re-seated or new future sessions are fine, even beside a running one
    courses.check_sessions(current, current, NOW, frozenset())
    reseated = [{**running, "seats": 30}, ahead, sess("s3", 1)]
    courses.check_sessions(current, reseated, NOW, frozenset())
    # a new session in the past, or starting exactly now
    assert code_of(current, [*current, sess("s3", -0.01)]) == "session_in_the_past"
    assert code_of(current, [*current, sess("s3", 0)]) == "session_in_the_past"
    # a future session moved into the past
    moved = {**ahead, "start": (NOW - timedelta(hours=1)).isoformat()}
    assert code_of(current, [running, moved]) == "session_in_the_past"
    # a running session keeps its dates: neither shortened nor backdated
    shortened = {**running, "end": (NOW + timedelta(minutes=1)).isoformat()}
    assert code_of(current, [shortened, ahead]) == "session_in_the_past"
    # the same instant written in another offset is no move
    paris = timezone(timedelta(hours=2))
    same = {**ahead, "start": datetime.fromisoformat(ahead["start"]).astimezone(paris).isoformat()}
    courses.check_sessions(current, [running, same], NOW, frozenset())


def test_a_session_with_enrolments_is_not_removed() -> None:
    current = [sess("s1", 3), sess("s2", 6)]
    assert courses.removed_sessions({"sessions": current}, {"sessions": current[1:]}) == ["s1"]
    assert code_of(current, current[1:], ("s1",)) == "session_has_enrolments"
    # an enrolment in a kept session does not stop removing another
    courses.check_sessions(current, current[:1], NOW, frozenset({"s1"}))
    courses.check_sessions(current, current[1:], NOW, frozenset())
