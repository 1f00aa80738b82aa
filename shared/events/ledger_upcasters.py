"""Upcasters of the ledger's version 1 events (registered when :mod:`shared.events.ledger`
is imported)."""

from __future__ import annotations

from typing import Any

from shared.events.accounts import need_tier
from shared.events.base import upcaster


# Version 1 of these carried the need flags and free-text reasons. Streams recorded before
# keep them (the hash chain covers the stored form); reading a stream upcasts them to what
# the rules need.
@upcaster("ledger.ProfileNoted", 1)
def _profile_noted_v1(data: dict[str, Any]) -> dict[str, Any]:
    profile = dict(data["profile"])
    flags = profile.pop("need_flags", None) or []
    return {**data, "profile": {**profile, "need_tier": need_tier(flags)}}


def _status_v1(data: dict[str, Any]) -> dict[str, Any]:
    data.pop("reason", None)
    return {**data, "reason_code": "other"}


for _name in ("WalletSuspended", "WalletReinstated", "WalletClosed", "EntryReversed"):
    upcaster(f"ledger.{_name}", 1)(_status_v1)


@upcaster("ledger.CreditsGranted", 1)
def _granted_v1(data: dict[str, Any]) -> dict[str, Any]:
    # a v1 statutory grant's reason was written by the allocation ("statutory entitlement
    # <year>"), not by a person: it says exactly "statutory"
    data.pop("reason", None)
    code = "statutory" if data.get("kind") == "statutory" else "other"
    return {**data, "reason_code": code}
