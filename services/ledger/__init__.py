"""The ledger service: the append-only, event-sourced store of every account's credit."""
