"""The one check every state machine of payments makes: a move is legal from the statuses
its ``TRANSITIONS`` table lists, and leads to the status the table names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from services.payments.domain.errors import IllegalMove

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    class Stateful(DataclassInstance, Protocol):
        """A frozen row with a status and the time it last changed."""

        @property
        def status(self) -> str: ...

        @property
        def updated_at(self) -> datetime: ...


M = TypeVar("M", bound=str)
S = TypeVar("S", bound=str)
Row = TypeVar("Row", bound="Stateful")

Transitions = Mapping[M, tuple[frozenset[S], S]]


def target(table: Mapping[M, tuple[frozenset[S], S]], what: str, status: str, move: M) -> S:
    """The status after ``move`` from ``status`` (a defect when the table forbids it)."""
    allowed, after = table[move]
    if status not in allowed:
        raise IllegalMove(what, status, move)
    return after


def advance(
    table: Mapping[M, tuple[frozenset[S], S]],
    what: str,
    row: Row,
    move: M,
    now: datetime,
    **changes: Any,
) -> Row:
    """``row`` after ``move`` (checked against ``table``) at ``now``, with ``changes``."""
    status = target(table, what, row.status, move)
    return replace(row, status=status, updated_at=now, **changes)
