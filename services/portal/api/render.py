"""Drawing the portal's pages: :class:`shared.i18n.Pages` over the portal's templates, so
every page (sign-in, the learner's pages, the dashboard) is in the reader's language
(``?lang=``, then the ``ila_lang`` cookie, then ``Accept-Language``) with the language
switch in its header, as the registry's pages are.

Templates mark every text for translation (``{{ _("...") }}``, ``{% trans %}``); Python
hands them message ids (the labels below, marked with ``N_`` for extraction) and the
templates translate them. Amounts and dates are formatted for the page's locale.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from services.portal.deps import TEMPLATES
from shared import i18n, web
from shared.i18n import N_, Localized, Pages

# what each status means to the learner (message ids, translated in the templates)
ENROLMENT_STATUS = {
    "awaiting_learner_confirmation": N_("Waiting for your answer"),
    "held": N_("Being checked by your agency"),
    "reserving": N_("Reserving your credit"),
    "reservation_rejected": N_("Your credit could not be reserved"),
    "awaiting_co_payment": N_("Waiting for your answer on the part you pay"),
    "confirmed": N_("Confirmed"),
    "completed": N_("Completed"),
    "rejected": N_("Not accepted"),
    "refused": N_("Refused by you"),
    "expired": N_("Expired without an answer"),
    "cancelled": N_("Cancelled"),
}
CLAIM_STATUS = {
    "approved": N_("Accepted, being paid from your credit"),
    "held": N_("On hold"),
    "rejected": N_("Not accepted"),
    "captured": N_("Paid from your credit"),
    "in_payout": N_("Being paid to the provider"),
    "paid": N_("Paid to the provider"),
    "capture_rejected": N_("Could not be paid from your credit"),
    "reversed": N_("Reversed"),
}
MILESTONES = {
    "start": N_("Start of the training"),
    "completion": N_("Completion of the training"),
    "cancellation": N_("Cancellation"),
}
ATTESTATION = {
    "pending": N_("Waiting for your word"),
    "attested": N_("You confirmed it"),
    "contested": N_("You contested it"),
    "lapsed": N_("No answer given in time"),
    "resolved": N_("Settled by your agency"),
    "not_required": N_("Nothing to do"),
}
CONTEST_REASONS = {
    "not_enrolled": N_("I never enrolled in this training"),
    "did_not_attend": N_("I did not attend"),
    "did_not_complete": N_("I did not complete it"),
    "wrong_dates": N_("The dates are wrong"),
    "not_as_described": N_("The training was not as described"),
}
HISTORY = {
    "WalletOpened": N_("Account opened"),
    "ProfileNoted": N_("Profile noted"),
    "CreditsGranted": N_("Credit granted"),
    "CreditsReserved": N_("Credit reserved for a training"),
    "ReservationRejected": N_("Reservation refused"),
    "ReservationCaptured": N_("Credit spent on a training"),
    "CaptureRejected": N_("Payment from your credit refused"),
    "ReservationReleased": N_("Reserved credit given back"),
    "LotExpired": N_("Credit expired"),
    "EntryReversed": N_("Entry corrected"),
    "WalletSuspended": N_("Account suspended"),
    "WalletReinstated": N_("Account reinstated"),
    "WalletClosed": N_("Account closed"),
}

PAGES = Pages(
    (TEMPLATES, web.TEMPLATES),
    globals={
        "enrolment_status": ENROLMENT_STATUS,
        "claim_status": CLAIM_STATUS,
        "milestones": MILESTONES,
        "attestation": ATTESTATION,
        "contest_reasons": CONTEST_REASONS,
        "history_labels": HISTORY,
    },
)
# what every portal page's response says besides its language
HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}


def _when(value: str | date | datetime) -> date | datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def money(currency: str, loc: Localized | None = None) -> Callable[[int | None], str]:
    """Minor units of ``currency`` as the locale writes them (€1,800.00, 1 800,00 €)."""
    loc = loc or i18n.localized(i18n.DEFAULT_LOCALE)

    def fmt(amount: int | None) -> str:
        return loc.money(amount or 0, currency)

    return fmt


def day(value: str | date | datetime | None, loc: Localized | None = None) -> str:
    """A date as people read it: 1 Mar 2026, 1 mars 2026."""
    if value is None:
        return ""
    return (loc or i18n.localized(i18n.DEFAULT_LOCALE)).date(_when(value))


def moment(value: str | datetime | None, loc: Localized | None = None) -> str:
    """A date and time (UTC) as people read it."""
    if value is None:
        return ""
    when = _when(value)
    loc = loc or i18n.localized(i18n.DEFAULT_LOCALE)
    if not isinstance(when, datetime):
        return loc.date(when)
    return f"{loc.date(when)}, {when:%H:%M} UTC"


def formats(request: Request, currency: str) -> dict[str, Any]:
    """The locale's formatters of a page: ``money``, ``day`` and ``moment``."""
    loc = i18n.localized(i18n.choose(request).locale)
    return {
        "money": money(currency, loc),
        "day": lambda value: day(value, loc),
        "moment": lambda value: moment(value, loc),
        "currency": currency,
    }


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A portal page in the reader's language (never cached, never framed)."""
    currency = context.pop("currency", None) or request.app.state.settings.currency
    return PAGES.render(
        request,
        template,
        status_code=status_code,
        headers=HEADERS,
        **{**formats(request, currency), **context},
    )
