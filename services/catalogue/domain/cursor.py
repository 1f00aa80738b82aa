"""The cursor of the public course search: the last row of a page (its sort key and course
id) and the kind of query it belongs to (ranked by ``q``, or by title), opaque to clients.
A cursor this API did not give out, or one of the other kind of query, is refused with 400
``invalid_cursor`` naming the ``after`` parameter."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from decimal import Decimal, InvalidOperation

from shared.errors import DomainError


class InvalidCursor(DomainError):
    kind = "bad_request"
    code = "invalid_cursor"
    field = "after"


def _mode(ranked: bool) -> str:
    return "rank" if ranked else "title"


def encode(ranked: bool, sort_key: str, course_id: uuid.UUID) -> str:
    raw = json.dumps({"m": _mode(ranked), "k": sort_key, "id": str(course_id)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str, ranked: bool) -> tuple[str, uuid.UUID]:
    """The sort key and course id of ``cursor``, given out for a query ``ranked`` or not."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        key, course_id, mode = str(data["k"]), uuid.UUID(data["id"]), data["m"]
        if ranked:
            Decimal(key)
    except (ValueError, KeyError, TypeError, binascii.Error, InvalidOperation) as exc:
        raise InvalidCursor("the 'after' cursor is not one this API gave out") from exc
    if mode != _mode(ranked):
        raise InvalidCursor("the 'after' cursor belongs to a different query (with or without q)")
    return key, course_id
