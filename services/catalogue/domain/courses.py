"""The eligibility workflow of a course and its versions.

    draft ──submit──▶ submitted ──approve──▶ approved
      ▲                 │  ▲                   │
      │               reject└──(price/content change of an approved course)
      │                 ▼                      │
      └── rejected ◀────┘        withdrawn ◀───┘ (withdraw: from submitted or approved)

A rejected or withdrawn course may be changed and submitted again. Every change makes a
new version (the old ones are kept: an enrolment stays on the version it was made on). A
change of price or content of an approved course goes back to ``submitted``: a provider
cannot raise a price that learners' credit pays without an agency seeing it (the fraud
lesson of France's CPF). A change of sessions alone keeps it approved. A course under
review is not changed: withdraw it first, so an agency approves what it read.

Paid for training given: a change never moves a session into the past. A session it adds,
or whose start or end it changes, must start after now (a session that has started keeps
its dates, so a provider cannot shorten it to claim completion early, nor backdate one to
claim for training that never took place). A session that learners are enrolled in is
never removed (cancel the enrolments first).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from services.catalogue.domain.errors import conflict, forbidden, unprocessable

CourseStatus = Literal["draft", "submitted", "approved", "rejected", "withdrawn"]
Action = Literal["submit", "withdraw", "approve", "reject"]

TRANSITIONS: dict[Action, tuple[frozenset[str], CourseStatus]] = {
    "submit": (frozenset({"draft", "rejected", "withdrawn"}), "submitted"),
    "withdraw": (frozenset({"submitted", "approved"}), "withdrawn"),
    "approve": (frozenset({"submitted"}), "approved"),
    "reject": (frozenset({"submitted"}), "rejected"),
}

# A change of any of these on an approved course needs the agency's review again.
REVIEWED_FIELDS = frozenset(
    {
        "kind",
        "title",
        "description",
        "language",
        "learning_outcomes",
        "eqf_level",
        "isced_field",
        "esco_skills",
        "workload_hours",
        "ects",
        "mode",
        "region",
        "tags",
        "descriptor",
        "price",
    }
)


@dataclass(frozen=True)
class Course:
    course_id: str
    provider_id: str
    status: CourseStatus
    version: int


@dataclass(frozen=True)
class Revision:
    content: dict[str, Any]
    changed: tuple[str, ...]
    status: CourseStatus
    version: int


def check_owner(course: Course, provider_id: str | None) -> None:
    if provider_id != course.provider_id:
        raise forbidden("not_your_course", "this course belongs to another provider")


def transition(course: Course, action: Action) -> CourseStatus:
    allowed, target = TRANSITIONS[action]
    if course.status not in allowed:
        raise conflict(
            f"cannot_{action}",
            f"a {course.status} course cannot be {_past(action)} "
            f"(only from {', '.join(sorted(allowed))})",
        )
    return target


def revise(course: Course, current: dict[str, Any], changes: dict[str, Any]) -> Revision | None:
    """The next version after ``changes`` (JSON values), or None when nothing differs."""
    if course.status == "submitted":
        raise conflict("under_review", "the course is under review: withdraw it before changing it")
    changed = tuple(sorted(k for k, v in changes.items() if current.get(k) != v))
    if not changed:
        return None
    status: CourseStatus = course.status
    if course.status == "approved" and REVIEWED_FIELDS.intersection(changed):
        status = "submitted"
    return Revision({**current, **changes}, changed, status, course.version + 1)


def removed_sessions(current: dict[str, Any], revised: dict[str, Any]) -> list[str]:
    """The ids of the sessions the revision drops."""
    kept = {str(s["session_id"]) for s in revised.get("sessions") or ()}
    dropped = (str(s["session_id"]) for s in current.get("sessions") or ())
    return [i for i in dropped if i not in kept]


def check_sessions(
    current: Sequence[dict[str, Any]],
    revised: Sequence[dict[str, Any]],
    now: datetime,
    enrolled: Collection[str],
) -> None:
    """Refuse a revision that removes a session with enrolments (``enrolled``: ids of the
    course's sessions with a live enrolment) or moves a session into the past."""
    before = {str(s["session_id"]): s for s in current}
    kept = {str(s["session_id"]) for s in revised}
    taken = sorted(i for i in before if i not in kept and i in enrolled)
    if taken:
        raise conflict(
            "session_has_enrolments",
            f"session {taken[0]} has enrolments and cannot be removed",
        )
    for new in revised:
        old = before.get(str(new["session_id"]))
        start, end = _instant(new["start"]), _instant(new["end"])
        moved = old is None or (_instant(old["start"]), _instant(old["end"])) != (start, end)
        if moved and start <= now:
            raise unprocessable(
                "session_in_the_past",
                f"session {new['session_id']} would start at {start.isoformat()}, "
                "which is not in the future: a session added or moved must start after now",
                "sessions",
            )


def _instant(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _past(action: Action) -> str:
    return {
        "submit": "submitted",
        "withdraw": "withdrawn",
        "approve": "approved",
        "reject": "rejected",
    }[action]
