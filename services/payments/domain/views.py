"""What payments reads of other services, as its rules see it: an account, a course, one
of its sessions, a top-up lot (read models fed by events), and a provider's standing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

# the provider statuses under which it may enrol learners and be paid
ELIGIBLE_PROVIDER = ("accredited",)


@dataclass(frozen=True)
class AccountView:
    account_id: uuid.UUID
    status: str
    employment_status: str
    need_tier: str = "standard"


@dataclass(frozen=True)
class CourseView:
    course_id: uuid.UUID
    provider_id: str
    version: int
    status: str
    price: int
    isced_field: str | None
    eqf_level: int | None
    tags: tuple[str, ...]
    # where it is given (co-funding rules of a region match on it; None: not known yet)
    region: str | None = None
    # training, guidance or validation (None: projected before the kind was kept)
    kind: str | None = None


@dataclass(frozen=True)
class SessionView:
    session_id: uuid.UUID
    course_id: uuid.UUID
    starts_on: date
    ends_on: date
    seats: int
    withdrawn: bool
    # the moment the session ends (unknown for sessions projected before it was kept)
    ends_at: datetime | None = None


@dataclass(frozen=True)
class LotView:
    kind: str
    amount: int
    earmark: dict[str, Any] | None
    expires_at: datetime | None
    revoked: bool


def provider_standing(status: str, qa_valid_until: date | None, today: date) -> str:
    """An accredited provider whose quality assurance lapsed is no longer eligible."""
    if status == "accredited" and qa_valid_until is not None and qa_valid_until < today:
        return "qa_expired"
    return status


def eligible(standing: str | None) -> bool:
    """Whether a provider in this standing may enrol learners and be paid."""
    return standing in ELIGIBLE_PROVIDER
