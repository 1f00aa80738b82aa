"""The ledger's HTTP API under ``/v1/ledger``: thin routers that parse, authorize through
:mod:`services.ledger.deps`, call a use case and shape the reply; domain errors propagate to
the one exception handler.

- :mod:`.balances`: a wallet's balance (now or at a past instant) and its entries;
- :mod:`.credit`: grants, and the four-eyes proposals of policies, allocations and
  reversals (the approvals routes themselves come from :mod:`shared.approvals_api`);
- :mod:`.funders`: funders, their yearly budgets (four eyes) and their top-ups;
- :mod:`.cofunding`: funders' co-funding rules (four eyes);
- :mod:`.statements`: what a funder's lots paid in a period (JSON or CSV);
- :mod:`.audit`: the global event stream, verification and the yearly statistics;
- :mod:`.statistics`: the monitoring figures by funder and year.
"""

from fastapi import APIRouter

from shared.approvals_api import approvals_router

from . import audit, balances, cofunding, credit, funders, statements, statistics

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])
router.include_router(approvals_router("ledger", ""))
router.include_router(credit.router)
router.include_router(funders.router)
router.include_router(cofunding.router)
router.include_router(statements.router)
router.include_router(balances.router)
router.include_router(audit.router)
router.include_router(statistics.router)

__all__ = ["router"]
