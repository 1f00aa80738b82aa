"""The ledger's use cases, each in the caller's transaction (a command and a context in,
events out):

- :mod:`.wallets`: ``Ledger``, the wallet use cases (load, decide, append, project, stage);
- :mod:`.allocation`: the yearly allocation run, resumable, and its job loop;
- :mod:`.sweeps`: expiry as events (lots and reservations past their date);
- :mod:`.proposals`: the four-eyes actions (policy, allocation, reversal).
"""

from .wallets import Ledger, Outcome, StateCache

__all__ = ["Ledger", "Outcome", "StateCache"]
