"""The catalogue's pure rules: provider eligibility, the course workflow, versions."""

from __future__ import annotations

from datetime import date, timedelta

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
