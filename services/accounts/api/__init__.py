"""HTTP endpoints of the accounts service, under ``/v1/accounts``: ``accounts`` (opening,
reading, the need profile and the lifecycle), ``personal`` (erasure of personal data),
``preferences`` (the learner's choice of messages), ``imports`` (bulk onboarding from a CSV
file), ``register`` (the population register's feed), ``lookup`` (the account of a person
signing in to the people's pages) and ``statistics`` (the monitoring figures). Routes parse,
authorize through :mod:`services.accounts.deps`, call a handler and shape the reply; the
domain's refusals propagate to the one exception handler."""

from __future__ import annotations

from fastapi import APIRouter

from services.accounts.api import (
    accounts,
    imports,
    lookup,
    personal,
    preferences,
    register,
    statistics,
)

router = APIRouter()
# statistics and the register feed first: their paths are no account id
for part in (statistics, register, accounts, personal, preferences, imports, lookup):
    router.include_router(part.router, prefix="/v1/accounts", tags=["accounts"])
