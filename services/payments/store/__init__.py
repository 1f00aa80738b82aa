"""The only place with SQL for payments, split by concern: :mod:`.rows` (typed rows in and
out, pages, locks), :mod:`.read_models` (accounts, providers, courses, sessions, lots),
:mod:`.enrolments` (enrolments and reservations), :mod:`.claims`, :mod:`.payees` and
:mod:`.payouts` (runs, payouts, remittance lines). Rows come back as the domain's frozen
dataclasses; the statuses a query filters on are passed in by the domain, never written
here. Nothing here commits: the caller's unit of work does."""
