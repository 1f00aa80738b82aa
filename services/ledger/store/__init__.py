"""The ledger's SQL, and the only place that has any, split by concern:

- :mod:`.events`: the event store (append, load a stream, lock a head) and :mod:`.chain`,
  the hash chain's canonical form an outside auditor can recompute;
- :mod:`.projections`: wallets, lots and reservations as the events leave them, account
  agencies, and the reads built on them;
- :mod:`.runs`: entitlement policies and allocation runs;
- :mod:`.audit`: the global order (with its horizon) and what verification reads.
"""
