"""Payments rules as pure functions over frozen states: no I/O and no clock (``now`` and
``today`` are passed in).

- :mod:`.enrolments`: the enrolment's state machine (proposal, consent, the ledger's
  answers, cancellation, the velocity hold) and the checks of a proposal;
- :mod:`.reservations`: the credit the ledger holds for an enrolment;
- :mod:`.claims`: the claim's state machine (decision, capture, holds, payouts) and the
  learner's attestation;
- :mod:`.payouts`: payouts and their runs, the bank's return reasons;
- :mod:`.payees`: bank details and their cooling-off;
- :mod:`.fees`: the participation fee, the credit requested and the payment bands;
- :mod:`.views`: what payments reads of other services (accounts, courses, sessions, lots);
- :mod:`.errors`: the refusals, each with a ``kind`` and a stable ``code``.

Each state machine writes its legal moves once, in a ``TRANSITIONS`` table, and its
decision functions return the new state and the events it publishes.
"""
