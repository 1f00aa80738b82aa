"""The canonical form of an event is defined by ``json.dumps(doc, sort_keys=True,
separators=(",", ":"), ensure_ascii=False)``; the chain writes it with orjson where orjson
gives the same bytes, and reads stored JSON with orjson where it gives the same values. A
hash must never depend on which encoder ran: these compare the two over every kind of
document, the ones orjson must hand back to ``json`` included."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ledger.store.chain import canonical_bytes, canonical_json, read_plain, rfc3339


def read_json(text: str) -> Any:
    """A stored column as verify reads it."""
    return read_plain(text)[0]


def definition(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def same_or_both_refuse(doc: Any) -> None:
    try:
        expected = definition(doc)
    except (TypeError, ValueError, UnicodeEncodeError) as refused:
        with pytest.raises(type(refused)):
            canonical_json(doc)
        return
    assert canonical_json(doc) == expected


# every code point but the surrogates (a stored string never holds one: UTF-8 cannot)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
KEYS = st.one_of(TEXT, st.sampled_from(["a", "A", "b", "é", "e\u0301", "\uffff", "\U0001f600"]))
INTS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.integers(),  # beyond 64 bits too: those go through json.dumps
    st.sampled_from([0, -1, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1]),
)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.one_of(st.none(), st.booleans(), INTS, TEXT)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(KEYS, inner, max_size=6)),
    max_leaves=25,
)
WITH_FLOATS = st.recursive(
    st.one_of(SCALARS, FLOATS),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(KEYS, inner, max_size=6)),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, JSON, max_size=8))
def test_orjson_writes_the_definitions_bytes(doc: dict[str, Any]) -> None:
    same_or_both_refuse(doc)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(KEYS, WITH_FLOATS, max_size=8))
def test_floats_anywhere_still_give_the_definitions_bytes(doc: dict[str, Any]) -> None:
    same_or_both_refuse(doc)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, WITH_FLOATS, max_size=8))
def test_stored_json_reads_as_json_loads_reads_it(doc: dict[str, Any]) -> None:
    for text in (json.dumps(doc), json.dumps(doc, ensure_ascii=False), definition(doc)):
        read = read_json(text)
        assert read == json.loads(text)
        assert definition(read) == definition(json.loads(text))
        assert canonical_json(read) == definition(json.loads(text))


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"s": "".join(chr(c) for c in range(0x80))},  # every control character escaped alike
        {"s": "\u007f\u0080\u00ff\u2028\u2029\ud7ff\ue000\ufeff\uffff\U00010000\U0010ffff"},
        {"naïve": "Zoë", "日本": ["東京", {"ключ": "значение"}], "emoji": "\U0001f600"},
        {"\uffff": 1, "\U0001f600": 2, "\ue000": 3, "z": 4, "Z": 5, "": 6, "a\x00": 7, "a": 8},
        {"amount": 50000, "big": 2**64 - 1, "neg": -(2**63), "bigger": 2**64, "huge": -(10**40)},
        {"f": 1.0, "g": 1e16, "h": 1e-7, "i": 0.1, "j": -0.0, "k": 123456789.123456789},
        {"nested": {"b": [1, {"d": None, "c": True}], "a": [[], {}, [[False]]]}},
        {"tuple": (1, 2), "int_key": {1: "x"}},  # json.dumps' own handling of these
        {"deep": json.loads("[" * 300 + "]" * 300)},
        {"lone": "\ud800"},  # refused by both
        {"obj": object()},  # refused by both
    ],
)
def test_chosen_documents(doc: dict[str, Any]) -> None:
    same_or_both_refuse(doc)


def test_big_integers_and_floats_are_read_as_json_reads_them() -> None:
    for text in ('{"n": 18446744073709551616}', '{"n": -9223372036854775809}', '{"x": 1.50}'):
        assert read_json(text) == json.loads(text)
        assert type(read_json(text)["n" if "n" in text else "x"]) is type(
            json.loads(text)["n" if "n" in text else "x"]
        )
    deep = "[" * 300 + "]" * 300  # deeper than orjson writes: read and written by json
    assert read_json(deep) == json.loads(deep)
    assert canonical_json({"deep": read_json(deep)}) == definition({"deep": json.loads(deep)})


@pytest.mark.parametrize(
    "instant",
    [
        datetime(2030, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC),
        datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(999, 1, 1, tzinfo=UTC),
        datetime(5, 1, 1, tzinfo=UTC),
        datetime(2030, 6, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=2))),
        datetime(2030, 6, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(0), "UTC+0")),
    ],
)
def test_rfc3339_is_the_definitions_text(instant: datetime) -> None:
    assert rfc3339(instant) == instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_canonical_bytes_of_an_event_are_the_definitions() -> None:
    event_id, stream_id = uuid.uuid4(), uuid.uuid4()
    recorded = datetime(2030, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    data = {"amount": 50000, "account_id": str(stream_id), "note": "Zoë \u2028 \x01"}
    metadata = {"actor": "admin:Zoë", "causation_id": None, "idempotency_key": "k-1"}
    got = canonical_bytes(
        event_id=event_id,
        stream_id=stream_id,
        version=3,
        type="ila.ledger.CreditsGranted.v2",
        schema_version=2,
        recorded_at=recorded,
        data=data,
        metadata=metadata,
    )
    assert got == definition(
        {
            "data": data,
            "event_id": str(event_id),
            "metadata": metadata,
            "recorded_at": "2030-01-02T03:04:05.000006Z",
            "schema_version": 2,
            "stream_id": str(stream_id),
            "type": "ila.ledger.CreditsGranted.v2",
            "version": 3,
        }
    )
    assert orjson.loads(got) == json.loads(got)
