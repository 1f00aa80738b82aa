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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from services.catalogue.domain.errors import conflict, forbidden

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


def _past(action: Action) -> str:
    return {
        "submit": "submitted",
        "withdraw": "withdrawn",
        "approve": "approved",
        "reject": "rejected",
    }[action]
