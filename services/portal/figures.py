"""The dashboard's views as tables, built from the services' statistics: what the page
shows, draws and exports (CSV and JSON) is the same rows, so the numbers never differ
between them. Pure functions, no I/O.

Money stays in integer minor units of the deployment's currency; a share is a percentage
with one decimal, computed from the integer counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shared.i18n import N_

ViewName = Literal["participation", "money", "activity", "holds", "guidance"]
VIEWS: tuple[ViewName, ...] = ("participation", "money", "activity", "holds", "guidance")

ISCED_BROAD_FIELDS = {
    "00": N_("Generic programmes and qualifications"),
    "01": N_("Education"),
    "02": N_("Arts and humanities"),
    "03": N_("Social sciences, journalism and information"),
    "04": N_("Business, administration and law"),
    "05": N_("Natural sciences, mathematics and statistics"),
    "06": N_("Information and communication technologies"),
    "07": N_("Engineering, manufacturing and construction"),
    "08": N_("Agriculture, forestry, fisheries and veterinary"),
    "09": N_("Health and welfare"),
    "10": N_("Services"),
    "99": N_("Field unknown"),
}
"""The broad fields of ISCED-F 2013 (the first two digits of a field's code); English
names (message ids), as the exports give them."""

DIMENSIONS = ("region", "age_band", "need_tier", "isced_field")


@dataclass(frozen=True)
class View:
    """A table: its name (as in ``?view=``), title, column names and rows."""

    name: ViewName
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def share(trained: int, holders: int) -> float | None:
    """``trained`` out of ``holders`` in percent, one decimal (None without holders)."""
    if holders <= 0:
        return None
    # integer arithmetic, rounded half up, then one decimal
    return (trained * 1000 + holders // 2) // holders / 10


def isced_name(code: str) -> str:
    return ISCED_BROAD_FIELDS.get(code, code)


def participation(accounts: dict[str, Any]) -> View:
    """Holders and those who trained, in total and by each dimension; the ISCED-F lines
    count those who trained in the field against all holders."""
    target = accounts["target_percent"]
    holders = int(accounts["holders"])
    rows: list[tuple[Any, ...]] = [
        ("all", "all", holders, accounts["trained"], share(accounts["trained"], holders), target)
    ]
    for dimension in DIMENSIONS[:3]:
        for g in accounts[f"by_{dimension}"]:
            rows.append(
                (
                    dimension,
                    g["key"],
                    g["holders"],
                    g["trained"],
                    share(g["trained"], g["holders"]),
                    target,
                )
            )
    for g in accounts["by_isced_field"]:
        rows.append(
            ("isced_field", g["key"], holders, g["trained"], share(g["trained"], holders), target)
        )
    return View(
        "participation",
        "Account holders who trained this year",
        ("dimension", "group", "holders", "trained", "share_percent", "target_percent"),
        rows,
    )


MONEY_FIGURES = ("granted", "spent", "released", "expired", "reversed_granted", "reversed_spent")


def money(ledger: dict[str, Any]) -> View:
    currency = ledger["currency"]
    rows = [
        (y["year"], line["funder_id"], *(line[f] for f in MONEY_FIGURES), currency)
        for y in ledger["years"]
        for line in y["by_funder"]
    ]
    return View(
        "money",
        "Credit by funder and year",
        ("year", "funder_id", *MONEY_FIGURES, "currency"),
        rows,
    )


def activity(payments: dict[str, Any]) -> View:
    currency = payments["currency"]
    rows = [
        (m["month"], m["enrolments"], m["completions"], m["payouts"], m["paid"], currency)
        for m in payments["by_month"]
    ]
    return View(
        "activity",
        "Enrolments, completions and payouts by month",
        ("month", "enrolments", "completions", "payouts", "paid", "currency"),
        rows,
    )


def holds(payments: dict[str, Any]) -> View:
    currency = payments["currency"]
    rows = [
        (kind, r["reason"], r["held"], r["amount"], currency)
        for kind in ("claims", "enrolments")
        for r in payments["holds"][kind]["by_reason"]
    ]
    return View(
        "holds",
        "Fraud holds standing",
        ("held", "reason", "count", "amount", "currency"),
        rows,
    )


EQF_LEVELS = tuple(str(level) for level in range(1, 9))


def guidance(payments: dict[str, Any], catalogue: dict[str, Any]) -> View:
    """Guidance plans recorded (payments) and validations of prior learning (the
    catalogue), month by month, the validations also by EQF level."""
    validated = {m["month"]: m for m in catalogue["by_month"]}
    rows = []
    for m in payments["by_month"]:
        v = validated.get(m["month"], {"validations": 0, "by_eqf_level": {}})
        levels = v["by_eqf_level"]
        rows.append(
            (
                m["month"],
                m.get("guidance_plans", 0),
                v["validations"],
                *(levels.get(level, 0) for level in EQF_LEVELS),
            )
        )
    return View(
        "guidance",
        N_("Guidance plans and validations of prior learning by month"),
        (
            "month",
            "guidance_plans",
            "validations",
            *(f"validations_eqf_{level}" for level in EQF_LEVELS),
        ),
        rows,
    )


def views(
    accounts: dict[str, Any],
    ledger: dict[str, Any],
    payments: dict[str, Any],
    catalogue: dict[str, Any],
) -> dict[ViewName, View]:
    return {
        "participation": participation(accounts),
        "money": money(ledger),
        "activity": activity(payments),
        "holds": holds(payments),
        "guidance": guidance(payments, catalogue),
    }


def csv_rows(view: View) -> Sequence[Sequence[Any]]:
    """The view as CSV rows: the header, then the rows (an absent share is empty)."""
    return [view.columns, *[["" if v is None else v for v in row] for row in view.rows]]
