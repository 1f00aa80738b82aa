"""The auditors' checks: :mod:`.verify` recomputes every hash chain and rebuilds every wallet
from the database's events; :mod:`.replay` rebuilds every balance from the Kafka topic alone."""

from .verify import VerifyReport, verify, wallet_view

__all__ = ["VerifyReport", "verify", "wallet_view"]
