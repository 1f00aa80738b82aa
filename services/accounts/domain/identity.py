"""A person's national id, kept only as a keyed hash: equal for the same person, useless
without the secret pepper."""

from __future__ import annotations

import hashlib
import hmac


def national_id_hash(national_id: str, pepper: str) -> str:
    """The keyed hash of a national id, blind to spaces and letter case."""
    normalized = "".join(national_id.split()).upper()
    return hmac.new(pepper.encode(), normalized.encode(), hashlib.sha256).hexdigest()
