"""The one check every state machine of payments makes: a move is legal from the statuses
its ``TRANSITIONS`` table lists, and leads to the status the table names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from services.payments.domain.errors import IllegalMove

M = TypeVar("M", bound=str)
S = TypeVar("S", bound=str)

Transitions = Mapping[M, tuple[frozenset[S], S]]


def target(table: Mapping[M, tuple[frozenset[S], S]], what: str, status: str, move: M) -> S:
    """The status after ``move`` from ``status`` (a defect when the table forbids it)."""
    allowed, after = table[move]
    if status not in allowed:
        raise IllegalMove(what, status, move)
    return after
