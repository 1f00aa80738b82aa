"""Messages shown once, on the page a form's redirect leads to.

A form handler puts a message id (and its values) in the session; the next page takes it
out and shows it. Nothing travels in the URL, so nobody can make the page say something
by sending a link.
"""

from __future__ import annotations

from typing import Any

from services.portal.sessions import SignedIn
from services.portal.store import flash as store
from shared.i18n import N_
from shared.service import ServiceRuntime

# what each message says (message ids, translated in the templates)
MESSAGES = {
    "confirmed": N_("You confirmed your enrolment in %(course)s. Your credit is being reserved."),
    "refused": N_("You refused the proposal for %(course)s. Nothing was taken from your credit."),
    "contested": N_(
        "You contested the claim for %(course)s. It will not be paid until your "
        "agency has looked into it."
    ),
    "attested": N_("You confirmed the training %(course)s was given. Thank you."),
}


async def put(rt: ServiceRuntime, signed: SignedIn, message: str, **values: str) -> None:
    assert message in MESSAGES
    async with rt.uow() as session:
        await store.put(session, signed.session_id, {"id": message, "values": values})


async def take(rt: ServiceRuntime, signed: SignedIn) -> tuple[str, dict[str, Any]] | None:
    async with rt.uow() as session:
        found = await store.take(session, signed.session_id)
    if not found or found.get("id") not in MESSAGES:
        return None
    values = found.get("values")
    return MESSAGES[str(found["id"])], values if isinstance(values, dict) else {}
