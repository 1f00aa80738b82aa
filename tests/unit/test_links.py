"""The OpenAPI links each service publishes lead somewhere: every link names an operation of
the same service's schema and gives each of its path parameters a value."""

from __future__ import annotations

from typing import Any

import pytest

from ila.registry import definition
from shared.links import follow, link
from shared.service import build_app
from shared.settings import SERVICES
from tests.support import settings_for


def published(service: str) -> dict[str, Any]:
    app = build_app([definition(service)], settings_for("postgresql+asyncpg://u@h/db"))
    schema: dict[str, Any] = app.openapi()
    return schema


def operation_at(schema: dict[str, Any], ref: str) -> dict[str, Any]:
    """The operation an ``operationRef`` (``#/paths/<escaped path>/<method>``) names."""
    prefix, _, rest = ref.partition("#/paths/")
    assert prefix == "", ref
    escaped, _, method = rest.rpartition("/")
    path = escaped.replace("~1", "/").replace("~0", "~")
    assert path in schema["paths"], f"{ref}: no path {path}"
    assert method in schema["paths"][path], f"{ref}: no {method.upper()} {path}"
    operation: dict[str, Any] = schema["paths"][path][method]
    return operation


def test_a_link_takes_each_path_parameter_from_the_response_body() -> None:
    assert link("GET /v1/things/{thing_id}/parts/{part}", part="$request.path.part") == {
        "operationRef": "#/paths/~1v1~1things~1{thing_id}~1parts~1{part}/get",
        "parameters": {"thing_id": "$response.body#/thing_id", "part": "$request.path.part"},
    }
    links = follow(201, "GET /v1/things/{thing_id}", "POST /v1/things/{thing_id}/close")
    assert set(links[201]["links"]) == {"get-things-thing_id", "post-things-thing_id-close"}


@pytest.mark.parametrize("service", SERVICES)
def test_every_link_leads_to_an_operation_of_the_service(service: str) -> None:
    schema = published(service)
    count = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                for name, target in response.get("links", {}).items():
                    count += 1
                    where = f"{method.upper()} {path} {status} {name}"
                    linked = operation_at(schema, target["operationRef"])
                    wanted = {p["name"] for p in linked.get("parameters", []) if p["in"] == "path"}
                    assert set(target["parameters"]) == wanted, where
                    assert status.startswith("2"), where
    assert count >= 5, f"{service} declares only {count} links"
