"""Co-funding: a funder's standing commitment to pay the shortfall of the enrolments that
match its criteria, out of its budget of a year, at the moment the enrolment's credit is
reserved. Pure: which rules apply to a reservation, and what each pays.

The shortfall of a reservation is what the learner's own usable credit for the course does
not cover of the credit payments asked for (``amount - spendable``): without co-funding it
is refused (``insufficient_credit``) or, once the learner accepted to pay the rest
(``up_to``), falls on the learner. Co-funding is weighed only when the reservation would
otherwise be made or refused for want of credit (an open wallet, a new reservation id, no
live reservation of the enrolment).

What a rule pays: ``share`` percent of the shortfall (rounded down; 100 when not set), at
most ``cap`` per enrolment, at most what is still unpaid (earlier rules paid first) and at
most what is left of its budget (a spent budget: the rule does not apply). A rule pays an
enrolment once (its lot id is derived from the rule and the enrolment).

Order, when several rules match: the funder closest to the learner first (``employer``,
``sector_fund``, ``region``, ``state``), then the rules in the order they came into force
(``rank``), then by rule id.

Without ``up_to``, co-funding applies only when it covers the whole shortfall (the
reservation is then made); otherwise nothing is granted, and the refusal's ``available``
counts what co-funding would pay, so that the learner's offer shows the co-payment that
remains.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from services.ledger.commands import GrantCredits, ReserveCredits
from shared.events.budgets import budget_id_of
from shared.events.ledger import CourseRef, Earmark, WalletProfile

from .reservations import DEFAULT_RESERVATION_LIFETIME
from .selection import spendable
from .state import WalletState

KIND_ORDER = {"employer": 0, "sector_fund": 1, "region": 2, "state": 3}
_LOTS = uuid.UUID("0c6f3f7e-3b53-4b4e-8f0a-5a8d1c2e9b47")


@dataclass(frozen=True, slots=True)
class CofundingRule:
    """A rule in force. Every criterion set must hold; at least one of share and cap."""

    rule_id: uuid.UUID
    funder_id: str
    funder_kind: str
    year: int
    rank: int
    share: int | None = None
    cap: int | None = None
    employer_id: str | None = None
    region: str | None = None
    isced_prefix: str | None = None
    eqf_min: int | None = None
    eqf_max: int | None = None

    @property
    def budget_id(self) -> uuid.UUID:
        return budget_id_of(self.funder_id, self.year)

    def fits(self, course: CourseRef, now: datetime) -> bool:
        """Whether the course criteria hold for ``course`` reserved at ``now`` (a rule
        co-funds reservations made in its budget's year)."""
        if now.year != self.year:
            return False
        if self.region is not None and course.region != self.region:
            return False
        if self.isced_prefix is not None and (
            course.isced_field is None or not course.isced_field.startswith(self.isced_prefix)
        ):
            return False
        level = course.eqf_level
        if self.eqf_min is not None and (level is None or level < self.eqf_min):
            return False
        return not (self.eqf_max is not None and (level is None or level > self.eqf_max))

    def matches(self, profile: WalletProfile | None, course: CourseRef, now: datetime) -> bool:
        """Whether an enrolment of this learner in ``course``, reserved at ``now``, is one
        the rule co-funds (its employees: the learner's profile names the employer)."""
        if self.employer_id is not None and (
            profile is None or profile.employer_id != self.employer_id
        ):
            return False
        return self.fits(course, now)

    def due(self, shortfall: int) -> int:
        """What the rule commits to pay of ``shortfall``, before budget and earlier rules."""
        amount = shortfall * (100 if self.share is None else self.share) // 100
        return amount if self.cap is None else min(amount, self.cap)

    def order(self) -> tuple[int, int, str]:
        return KIND_ORDER.get(self.funder_kind, len(KIND_ORDER)), self.rank, str(self.rule_id)


def lot_id_of(rule_id: uuid.UUID, enrolment_id: uuid.UUID) -> uuid.UUID:
    """The lot a rule grants for an enrolment (the same every time: a rule pays once)."""
    return uuid.uuid5(_LOTS, f"{rule_id}:{enrolment_id}")


def shortfall(state: WalletState, cmd: ReserveCredits, now: datetime) -> int:
    """What co-funding could pay for this reservation (0: it is no case for co-funding)."""
    if state.status != "open" or cmd.reservation_id in state.reservations:
        return 0
    if cmd.reservation_id in state.rejected or state.live_reservation(cmd.enrolment_id):
        return 0
    if cmd.expires_at is not None and cmd.expires_at <= now:
        return 0
    return max(cmd.amount - spendable(state, cmd.course, now), 0)


@dataclass(frozen=True, slots=True)
class Payment:
    """What one rule pays for one reservation."""

    rule: CofundingRule
    amount: int


def payments(
    state: WalletState,
    cmd: ReserveCredits,
    rules: Iterable[CofundingRule],
    left: Mapping[uuid.UUID, int],
    now: datetime,
) -> list[Payment]:
    """What the matching ``rules`` pay of the reservation's shortfall, in rule order, given
    what is ``left`` of each budget (a budget not named has nothing left)."""
    gap = shortfall(state, cmd, now)
    if gap == 0:
        return []
    budgets = dict(left)
    unpaid = gap
    out: list[Payment] = []
    for rule in sorted(rules, key=CofundingRule.order):
        if unpaid == 0:
            break
        if not rule.matches(state.profile, cmd.course, now):
            continue
        if lot_id_of(rule.rule_id, cmd.enrolment_id) in state.lots:
            continue  # it paid this enrolment already
        amount = min(rule.due(gap), unpaid, budgets.get(rule.budget_id, 0))
        if amount <= 0:
            continue
        budgets[rule.budget_id] -= amount
        unpaid -= amount
        out.append(Payment(rule, amount))
    return out


def covers(cmd: ReserveCredits, gap: int, paid: Iterable[Payment]) -> bool:
    """Whether ``paid`` is granted: always once the learner accepted to pay the rest
    (``up_to``), otherwise only when it closes the whole shortfall ``gap``."""
    return cmd.up_to or sum(p.amount for p in paid) >= gap


def grants(cmd: ReserveCredits, paid: Iterable[Payment], now: datetime) -> list[GrantCredits]:
    """The lots that carry ``paid`` into the wallet: drawn from each rule's budget,
    earmarked to the enrolment's course (only its reservation uses them first), expiring
    with the reservation."""
    expires_at = cmd.expires_at or now + DEFAULT_RESERVATION_LIFETIME
    return [
        GrantCredits(
            account_id=cmd.account_id,
            lot_id=lot_id_of(p.rule.rule_id, cmd.enrolment_id),
            amount=p.amount,
            funder_id=p.rule.funder_id,
            reason_code="cofunding",
            kind="top_up",
            year=p.rule.year,
            expires_at=expires_at,
            earmark=Earmark(course_ids=(cmd.course.course_id,)),
            from_budget=True,
        )
        for p in paid
    ]


__all__ = [
    "KIND_ORDER",
    "CofundingRule",
    "Payment",
    "covers",
    "grants",
    "lot_id_of",
    "payments",
    "shortfall",
]
