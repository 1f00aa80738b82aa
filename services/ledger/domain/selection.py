"""Which lots a reservation may draw on, and in which order (the earmark rule itself is
``Earmark.admits``, shared with the payments service).

Order: earmarked lots whose earmark matches the course, then unearmarked lots; within each
group the soonest expiry first (a lot that never expires comes last), then the oldest grant
(stream version breaks ties between grants at the same instant). Spending earmarked and
soon-expiring credit first leaves the learner the most freely usable, longest-lived credit.
A lot whose earmark does not match the course, or that is past its expiry at ``now`` (swept
or not), is never used.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shared.events.ledger import CourseRef

from .state import Lot, WalletState

NEVER = datetime.max.replace(tzinfo=UTC)
"""Sorts a lot without expiry after every lot that has one."""


def usable_lots(state: WalletState, course: CourseRef, now: datetime) -> list[Lot]:
    """The lots a reservation for ``course`` may draw on at ``now``, in the order it draws."""
    lots = [
        lot
        for lot in state.lots.values()
        if lot.free > 0
        and not lot.is_due(now)
        and (lot.earmark is None or lot.earmark.admits(course))
    ]
    return sorted(
        lots,
        key=lambda lot: (
            lot.earmark is None,
            lot.expires_at or NEVER,
            lot.granted_at,
            lot.granted_version,
        ),
    )


def spendable(state: WalletState, course: CourseRef, now: datetime) -> int:
    """What a reservation for ``course`` could hold at ``now``."""
    return sum(lot.free for lot in usable_lots(state, course, now))


__all__ = ["NEVER", "spendable", "usable_lots"]
