"""Routing a request to the service that serves its path, without asking every route.

FastAPI (0.16x) matches a request by walking every included router and, inside each, every
route, saving and restoring its routing context at each step: with the four services in one
app (about 160 routes), finding ``GET /v1/enrolments/{id}`` took about half a millisecond,
a quarter of such a request's CPU. A :class:`GatedRouter` holds one service's routers and,
asked whether it matches a request, first tries its routes' path patterns on the path: a
request for another service's path costs a few regular expressions, not the walk.

What a gate answers is what FastAPI answers: it only ever says "no match" for a path that
none of its routes' patterns matches, which FastAPI's walk would also have found (a route
that matches the path but not the method still reaches FastAPI, for its 405).

FastAPI (0.165) also asks, at every level of every request's walk, whether any router below
changed since it last listed its routes: a walk of the whole tree beneath, on every request
(about 4% of an HTTP grant's CPU). :func:`remember_routes_versions` keeps each router's
answer until a route is added anywhere in the process, when every answer is asked anew: the
same numbers, the walk done once per change instead of once per request.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from fastapi.routing import iter_route_contexts
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope

__all__ = ["GatedRouter", "remember_routes_versions"]

_changes = 0  # routes added to any router of the process, since it started


def remember_routes_versions() -> bool:
    """Remember ``APIRouter._get_routes_version`` until a router's routes change (False,
    nothing done, on a FastAPI without those methods)."""
    mark = getattr(APIRouter, "_mark_routes_changed", None)
    get = getattr(APIRouter, "_get_routes_version", None)
    if mark is None or get is None:
        return False
    if getattr(get, "remembered", False):
        return True

    def _mark_routes_changed(self: APIRouter) -> None:
        global _changes
        _changes += 1
        mark(self)

    def _get_routes_version(self: APIRouter, seen: set[int] | None = None) -> int:
        if seen is not None:  # within a walk begun above: FastAPI's own
            return int(get(self, seen))
        memo: tuple[int, int] | None = self.__dict__.get("_remembered_routes_version")
        if memo is not None and memo[0] == _changes:
            return memo[1]
        changes = _changes
        version = int(get(self))
        self.__dict__["_remembered_routes_version"] = (changes, version)
        return version

    _get_routes_version.remembered = True  # type: ignore[attr-defined]
    APIRouter._mark_routes_changed = _mark_routes_changed  # type: ignore[method-assign]
    APIRouter._get_routes_version = _get_routes_version  # type: ignore[method-assign]
    return True


class GatedRouter(APIRouter):
    """The routers given, behind a check of the request's path against their routes'.

    The patterns are read on the first request: routes added to the routers it holds after
    that are not seen by the gate (they are all added when the app is built)."""

    def __init__(self, *routers: APIRouter) -> None:
        super().__init__()
        self._patterns: tuple[re.Pattern[str], ...] | None = None
        for router in routers:
            self.include_router(router)

    def include_router(self, router: APIRouter, **kwargs: Any) -> None:
        super().include_router(router, **kwargs)
        self._patterns = None

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        patterns = self._patterns
        if patterns is None:
            patterns = self._patterns = self._compile()
        if patterns and scope["type"] in ("http", "websocket"):
            path = get_route_path(scope)
            if not any(p.match(path) for p in patterns):
                return Match.NONE, {}
        return super().matches(scope)

    def _compile(self) -> tuple[re.Pattern[str], ...]:
        """Every route's path pattern; none (no gate) when a route has no pattern, since
        what it matches is then not known here."""
        patterns = []
        for context in iter_route_contexts(self.routes):
            pattern = getattr(context, "path_regex", None)
            if not isinstance(pattern, re.Pattern):
                return ()
            patterns.append(pattern)
        return tuple(patterns)
