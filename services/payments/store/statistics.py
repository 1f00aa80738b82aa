"""Payments' monitoring statistics for a year, month by month: the enrolments learners
consented to, the completions captured, the payouts sent and what they paid for claims, the
guidance plans recorded;
and the fraud holds standing now (held claims and enrolments, by reason).

An agency sees what hangs off the accounts it manages (payments' accounts read model): the
enrolments and claims of those accounts, and the part of each payout that paid their claims.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import fetch_all
from shared.statistics import twelve_months, year_params

IN_SCOPE = """(CAST(:agency AS text) IS NULL OR {account} IN
    (SELECT account_id FROM payments.accounts WHERE agency_id = CAST(:agency AS text)))"""


# the figures of each month
FIGURES = ("enrolments", "completions", "payouts", "paid", "guidance_plans")


def _month(column: str) -> str:
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM')"


ENROLMENTS = f"""
SELECT {_month("e.confirmed_at")} AS month, count(*) AS enrolments
FROM payments.enrolments e
WHERE e.confirmed_at >= :start AND e.confirmed_at < :end
  AND {IN_SCOPE.format(account="e.account_id")}
GROUP BY 1
"""
COMPLETIONS = f"""
SELECT {_month("c.captured_at")} AS month, count(*) AS completions
FROM payments.claims c JOIN payments.enrolments e USING (enrolment_id)
WHERE c.milestone = 'completion' AND c.status <> 'reversed'
  AND c.captured_at >= :start AND c.captured_at < :end
  AND {IN_SCOPE.format(account="e.account_id")}
GROUP BY 1
"""
PAYOUTS = f"""
SELECT {_month("coalesce(r.decided_at, p.created_at)")} AS month,
       count(DISTINCT p.payout_id) AS payouts, CAST(sum(l.amount) AS bigint) AS paid
FROM payments.payouts p
JOIN payments.payout_runs r USING (run_id)
JOIN payments.payout_lines l ON l.payout_id = p.payout_id AND l.live
JOIN payments.enrolments e ON e.enrolment_id = l.enrolment_id
WHERE p.status IN ('sent', 'settled')
  AND coalesce(r.decided_at, p.created_at) >= :start
  AND coalesce(r.decided_at, p.created_at) < :end
  AND {IN_SCOPE.format(account="e.account_id")}
GROUP BY 1
"""
GUIDANCE = f"""
SELECT {_month("g.recorded_at")} AS month, count(*) AS guidance_plans
FROM payments.guidance_plans g
WHERE g.recorded_at >= :start AND g.recorded_at < :end
  AND {IN_SCOPE.format(account="g.account_id")}
GROUP BY 1
"""
HELD_CLAIMS = f"""
SELECT coalesce(c.hold_reason, 'unknown') AS reason, count(*) AS held,
       CAST(coalesce(sum(c.amount), 0) AS bigint) AS amount
FROM payments.claims c JOIN payments.enrolments e USING (enrolment_id)
WHERE c.status = 'held' AND {IN_SCOPE.format(account="e.account_id")}
GROUP BY 1 ORDER BY 1
"""
HELD_ENROLMENTS = f"""
SELECT coalesce(e.hold_reason, 'unknown') AS reason, count(*) AS held,
       CAST(coalesce(sum(e.price), 0) AS bigint) AS amount
FROM payments.enrolments e
WHERE e.status = 'held' AND {IN_SCOPE.format(account="e.account_id")}
GROUP BY 1 ORDER BY 1
"""


async def yearly(session: AsyncSession, year: int, agency_id: str | None) -> dict[str, Any]:
    """The twelve months of ``year`` (enrolments, completions, payouts, paid) and the holds
    standing now. ``agency_id``: only its accounts (None: all)."""
    params = year_params(year, agency_id)
    months = twelve_months(year, lambda: dict.fromkeys(FIGURES, 0))
    for sql in (ENROLMENTS, COMPLETIONS, PAYOUTS, GUIDANCE):
        found: list[dict[str, Any]] = await fetch_all(session, dict, sql, params)
        for r in found:
            months[r["month"]].update({k: int(v) for k, v in r.items() if k != "month"})
    holds: dict[str, list[dict[str, Any]]] = {
        "claims": await fetch_all(session, dict, HELD_CLAIMS, params),
        "enrolments": await fetch_all(session, dict, HELD_ENROLMENTS, params),
    }
    by_month = list(months.values())
    totals = {k: sum(int(m[k]) for m in by_month) for k in FIGURES}
    return {
        "by_month": by_month,
        "totals": totals,
        "holds": {
            kind: {
                "by_reason": [
                    {"reason": r["reason"], "held": int(r["held"]), "amount": int(r["amount"])}
                    for r in rows
                ],
                "held": sum(int(r["held"]) for r in rows),
                "amount": sum(int(r["amount"]) for r in rows),
            }
            for kind, rows in holds.items()
        },
    }
