"""Drawing the portal's pages: one Jinja environment with gettext installed.

Templates mark every text for translation (``{{ _("...") }}``, ``{% trans %}``); Python
hands them message ids (the labels below are plain English ids) and the templates
translate them. Translations are the null ones here: switching to the gettext catalogues
changes :func:`environment` only.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.portal.deps import TEMPLATES
from shared import web

# what each status means to the learner (message ids, translated in the templates)
ENROLMENT_STATUS = {
    "awaiting_learner_confirmation": "Waiting for your answer",
    "held": "Being checked by your agency",
    "reserving": "Reserving your credit",
    "reservation_rejected": "Your credit could not be reserved",
    "awaiting_co_payment": "Waiting for your answer on the part you pay",
    "confirmed": "Confirmed",
    "completed": "Completed",
    "rejected": "Not accepted",
    "refused": "Refused by you",
    "expired": "Expired without an answer",
    "cancelled": "Cancelled",
}
CLAIM_STATUS = {
    "approved": "Accepted, being paid from your credit",
    "held": "On hold",
    "rejected": "Not accepted",
    "captured": "Paid from your credit",
    "in_payout": "Being paid to the provider",
    "paid": "Paid to the provider",
    "capture_rejected": "Could not be paid from your credit",
    "reversed": "Reversed",
}
MILESTONES = {
    "start": "Start of the training",
    "completion": "Completion of the training",
    "cancellation": "Cancellation",
}
ATTESTATION = {
    "pending": "Waiting for your word",
    "attested": "You confirmed it",
    "contested": "You contested it",
    "lapsed": "No answer given in time",
    "resolved": "Settled by your agency",
    "not_required": "Nothing to do",
}
CONTEST_REASONS = {
    "not_enrolled": "I never enrolled in this training",
    "did_not_attend": "I did not attend",
    "did_not_complete": "I did not complete it",
    "wrong_dates": "The dates are wrong",
    "not_as_described": "The training was not as described",
}
HISTORY = {
    "WalletOpened": "Account opened",
    "ProfileNoted": "Profile noted",
    "CreditsGranted": "Credit granted",
    "CreditsReserved": "Credit reserved for a training",
    "ReservationRejected": "Reservation refused",
    "ReservationCaptured": "Credit spent on a training",
    "CaptureRejected": "Payment from your credit refused",
    "ReservationReleased": "Reserved credit given back",
    "LotExpired": "Credit expired",
    "EntryReversed": "Entry corrected",
    "WalletSuspended": "Account suspended",
    "WalletReinstated": "Account reinstated",
    "WalletClosed": "Account closed",
}


def money(currency: str) -> Any:
    def fmt(amount: int | None) -> str:
        amount = amount or 0
        sign = "-" if amount < 0 else ""
        amount = abs(amount)
        return f"{sign}{amount // 100:,}.{amount % 100:02d} {currency}"

    return fmt


def day(value: str | date | datetime | None) -> str:
    """A date as people read it: 1 March 2026."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return f"{value.day} {value:%B %Y}"


def moment(value: str | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return f"{value.day} {value:%B %Y, %H:%M} UTC"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader([TEMPLATES, web.TEMPLATES]),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        day=day,
        moment=moment,
        enrolment_status=ENROLMENT_STATUS,
        claim_status=CLAIM_STATUS,
        milestones=MILESTONES,
        attestation=ATTESTATION,
        contest_reasons=CONTEST_REASONS,
        history_labels=HISTORY,
    )
    return env


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    currency = request.app.state.settings.currency
    html = (
        environment()
        .get_template(template)
        .render(money=money(currency), currency=currency, **context)
    )
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )
