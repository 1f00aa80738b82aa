"""Contract test: schemathesis generates requests from the published OpenAPI of all four
services (served together) and fails on any 5xx or a response that breaks the schema."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
)

from ila.registry import all_definitions
from shared.service import build_app
from tests.contract.support import served
from tests.support import IN_CI, create_database, token
from tests.support import settings_for as make_settings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(pg_admin_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    url = asyncio.run(create_database(pg_admin_url))
    cfg = make_settings(url)
    app = build_app(all_definitions(), cfg, run_jobs=False)
    with served(app) as base:
        tokens = {
            role: token(
                cfg,
                role,
                agency_id="pes-fr" if role == "agency" else None,
                provider_id="prov-1" if role == "provider" else None,
            )
            for role in ("agency", "admin", "auditor", "provider", "learner")
        }
        yield base, tokens


# CI replays the same examples every run; a developer's run explores new ones.
MAX_EXAMPLES = 12


def test_no_server_errors_and_schema_conformance(server: tuple[str, dict[str, str]]) -> None:
    """Every operation, a bounded number of generated requests, under several roles."""
    base, tokens = server
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=IN_CI,  # CI replays the same examples; developers explore new ones
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: schemathesis.Case) -> None:
            # the same request under several roles reaches past the authorization checks
            for role in ("agency", "admin", "auditor", "provider"):
                case.call_and_validate(
                    base_url=base,
                    headers={"Authorization": f"Bearer {tokens[role]}"},
                    checks=[not_a_server_error, response_schema_conformance],
                    excluded_checks=[negative_data_rejection],
                )

        try:
            exercise()
        except Exception as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:3000])
    assert operations > 10
    assert not failures, "\n\n".join(failures)
