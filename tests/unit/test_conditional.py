"""The ``Prefer: wait`` and ``If-None-Match`` headers as :mod:`shared.conditional` reads
them."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from shared.conditional import MOST_WAIT, _none_match, entity_tag, preferred_wait


def _request(**headers: str) -> Request:
    raw = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw})


@pytest.mark.parametrize(
    "prefer, seconds",
    [
        ("wait=5", 5.0),
        ("respond-async, wait=10", 10.0),
        ("wait=10; lenient, return=minimal", 10.0),
        ('WAIT="3"', 3.0),
        ("wait=100", MOST_WAIT),
        ("wait=abc", 0.0),
        ("nowait=5", 0.0),
        ("wait=-1", 0.0),
        ("", 0.0),
    ],
)
def test_prefer_wait(prefer: str, seconds: float) -> None:
    assert preferred_wait(_request(prefer=prefer)) == seconds


def test_if_none_match_compares_weakly_and_takes_any() -> None:
    tag = entity_tag(b'{"a":1}')
    assert tag != entity_tag(b'{"a":2}') and tag == entity_tag(b'{"a":1}')
    assert _none_match(_request(if_none_match=tag), tag)
    assert _none_match(_request(if_none_match=f"W/{tag}"), tag)
    assert _none_match(_request(if_none_match=f'"x", {tag}'), tag)
    assert _none_match(_request(if_none_match="*"), tag)
    assert not _none_match(_request(if_none_match='"x"'), tag)
    assert not _none_match(_request(), tag)
