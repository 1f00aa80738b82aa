"""OpenAPI links: how a response that creates a resource leads to the operations that read
or change it. They document the API's flow to its clients and let a stateful test client
(schemathesis) chain requests as a user would: open an account, then read it.

A route declares them next to its other responses::

    @router.post("", status_code=201, responses=follow(201, "GET /v1/things/{thing_id}"))

Each ``{name}`` of a target's path is taken from the response body's ``name`` unless
``sources`` gives another runtime expression for it (``$request.path.year``).
"""

from __future__ import annotations

import re
from typing import Any

_PARAMETER = re.compile(r"{([^}]+)}")


def link(target: str, **sources: str) -> dict[str, Any]:
    """The link object to ``target`` ("METHOD /path/{name}")."""
    method, _, path = target.partition(" ")
    pointer = path.replace("~", "~0").replace("/", "~1")
    parameters = {
        name: sources.get(name, f"$response.body#/{name}") for name in _PARAMETER.findall(path)
    }
    return {"operationRef": f"#/paths/{pointer}/{method.lower()}", "parameters": parameters}


def link_name(target: str) -> str:
    """A link's name from its target: ``GET /v1/accounts/{account_id}`` is
    ``get-accounts-account_id``."""
    method, _, path = target.partition(" ")
    words = [w.strip("{}") for w in path.split("/") if w and w != "v1"]
    return "-".join([method.lower(), *words])


def follow(status: int, *targets: str, **sources: str) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entry of a route whose ``status`` response leads to ``targets``."""
    return {status: {"links": {link_name(t): link(t, **sources) for t in targets}}}


def decisions(approvals: str) -> tuple[str, ...]:
    """What a four-eyes proposal leads to: reading it, approving it, refusing it, under
    ``approvals`` (``/v1/ledger/approvals``)."""
    one = f"{approvals}/{{approval_id}}"
    return f"GET {one}", f"POST {one}/approve", f"POST {one}/refuse"
