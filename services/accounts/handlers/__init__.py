"""The accounts use cases, each a command and a :class:`~.accounts.Context` in, inside the
caller's transaction: ``accounts`` opens an account and moves it through its lifecycle
(load, decide, store, stage the events); ``personal`` seals and opens the personal data
and wraps their keys; ``imports`` onboards a CSV file in batches; ``register`` applies the
population register's feed (``register_file`` from a JSON Lines file, ``register_report``
its report)."""

from services.accounts.handlers.accounts import (
    change_status,
    erase,
    open_account,
    transfer,
    update_profile,
)

__all__ = ["change_status", "erase", "open_account", "transfer", "update_profile"]
