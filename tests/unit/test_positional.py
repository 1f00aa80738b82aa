"""``shared.db.positional``: the ``:name`` parameters of the statements the services write (as
SQLAlchemy's ``text`` reads them) become the driver's ``$n``, and nothing else does."""

from __future__ import annotations

import pytest

from shared.db import positional


def test_names_are_numbered_in_order_of_first_use() -> None:
    sql, names = positional("SELECT * FROM t WHERE a = :a AND b = :b AND c = :a")
    assert sql == "SELECT * FROM t WHERE a = $1 AND b = $2 AND c = $1"
    assert names == ("a", "b")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT :x::text", "SELECT $1::text"),  # a cast after a parameter
        ("SELECT a::jsonb FROM t", "SELECT a::jsonb FROM t"),  # a cast alone
        ("SELECT CAST(:body AS jsonb)", "SELECT CAST($1 AS jsonb)"),
        ("SELECT '12:30'::time", "SELECT '12:30'::time"),  # a time literal
        ("SELECT 'relay:' || :schema", "SELECT 'relay:' || $1"),  # a key prefix
        ("WHERE k = ANY(:keys) AND _ = :_key", "WHERE k = ANY($1) AND _ = $2"),
        ("SET a = :a1, b = :a", "SET a = $1, b = $2"),  # one name a prefix of another
        (r"SELECT '\:literal'", r"SELECT '\:literal'"),  # escaped, as ``text`` has it
    ],
)
def test_casts_literals_and_escapes_are_left_alone(sql: str, expected: str) -> None:
    assert positional(sql)[0] == expected


def test_a_statement_is_turned_once() -> None:
    sql = "SELECT :once"
    assert positional(sql) is positional(sql)
