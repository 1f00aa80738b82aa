"""Stateful contract test: for each service, schemathesis chains requests along the OpenAPI
links of the service's own published schema (open an account, then read, change, suspend,
erase it; propose a policy, then approve it; ...) against the four services served together
on a real PostgreSQL, and fails on any 5xx or a response that breaks the schema.

A few resources are made first (an accredited provider with an approved course, an account
with credit) and generated ids are swapped for theirs half of the time, so that requests
which need another service's data (an enrolment needs an account and a course) get past the
404 and their links are followed too.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis.checks import not_a_server_error
from schemathesis.core.transport import Response
from schemathesis.generation.stateful.state_machine import APIStateMachine, StepInput, StepOutput
from schemathesis.hooks import HookContext
from schemathesis.specs.openapi import stateful
from schemathesis.specs.openapi.checks import response_schema_conformance
from schemathesis.specs.openapi.stateful import ApiTransitions, RootTransitions

from ila.registry import all_definitions, definition
from shared.auth import Role
from shared.service import build_app
from shared.settings import Settings
from tests.contract.support import served
from tests.integration.support.accounts import account_body
from tests.integration.support.catalogue import course_body, provider_body
from tests.support import IN_CI, create_database, token
from tests.support import settings_for as make_settings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SERVICES = ("accounts", "catalogue", "ledger", "payments")
# a step is sent as the first of these roles the operation admits and may see: a role check
# (401/403) or a scope check (404) refuses before doing anything, so trying the next role
# changes nothing
ROLES: tuple[Role, ...] = ("agency", "provider", "learner", "finance", "admin", "qa", "auditor")
# scenarios per service and steps per scenario: a few minutes on two shared cores
SCENARIOS = 25
STEPS = 8
# runs to reach them, when a run ends early (see below)
RUNS = 10


@dataclass(frozen=True)
class World:
    settings: Settings
    base: str
    tokens: dict[Role, str]
    # ids of the resources made beforehand, by the name of the field that carries them
    known: dict[str, Any]


def created(response: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def until_ok(client: httpx.Client, path: str, headers: dict[str, str]) -> None:
    """Wait for another service to learn of a resource (the bus is asynchronous)."""
    deadline = time.monotonic() + 30
    while client.get(path, headers=headers).status_code != 200:
        assert time.monotonic() < deadline, f"{path} never answered 200"
        time.sleep(0.1)


def seed(client: httpx.Client, cfg: Settings) -> World:
    """An accredited provider with an approved course, an account with credit; tokens for
    every role, scoped to them."""

    def bearer(role: Role, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(cfg, role, **claims)}"}

    agency = bearer("agency", sub="pes-fr-desk", agency_id="pes-fr")
    provider_id = created(client.post("/v1/providers", json=provider_body(), headers=agency))[
        "provider_id"
    ]
    accredit = {"reason_code": "qa_audit_passed"}
    created(
        client.post(f"/v1/providers/{provider_id}/accredit", json=accredit, headers=agency), 200
    )
    provider = bearer("provider", sub="provider-desk", provider_id=provider_id)
    # room for every enrolment the scenarios confirm, and the credit to pay for them
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    seats = {"start": start.isoformat(), "end": (start + timedelta(days=10)).isoformat()}
    sessions = [{"session_id": str(uuid.uuid4()), **seats, "seats": 1_000}]
    body = course_body(sessions=sessions)
    course = created(client.post("/v1/courses", json=body, headers=provider))
    course_id = course["course_id"]
    created(client.post(f"/v1/courses/{course_id}/submit", headers=provider), 200)
    approval = {"reason_code": "meets_criteria"}
    created(client.post(f"/v1/courses/{course_id}/approve", json=approval, headers=agency), 200)
    account_id = created(client.post("/v1/accounts", json=account_body(), headers=agency))[
        "account_id"
    ]
    until_ok(client, f"/v1/ledger/accounts/{account_id}/balance", agency)
    grant = {
        "account_id": account_id,
        "amount": 100_000_000,
        "funder_id": "state",
        "reason_code": "top_up",
    }
    key = {"Idempotency-Key": str(uuid.uuid4())}
    created(client.post("/v1/ledger/grants", json=grant, headers={**agency, **key}))
    until_ok(client, f"/v1/payees/{provider_id}", agency)
    tokens: dict[Role, str] = {
        role: token(
            cfg,
            role,
            sub=account_id if role == "learner" else f"{role}-desk",
            agency_id="pes-fr" if role == "agency" else None,
            provider_id=provider_id if role == "provider" else None,
        )
        for role in ROLES
    }
    known = {
        "account_id": account_id,
        "provider_id": provider_id,
        "course_id": course_id,
        "session_id": course["content"]["sessions"][0]["session_id"],
        "year": datetime.now(UTC).year,
    }
    return World(cfg, str(client.base_url).rstrip("/"), tokens, known)


@pytest.fixture(scope="module")
def server(pg_admin_url: str) -> Iterator[tuple[Settings, str]]:
    """The four services in one app on the in-process bus, as ``ila run`` serves them, so
    that what one service does reaches the others."""
    cfg = make_settings(asyncio.run(create_database(pg_admin_url)))
    app = build_app(all_definitions(), cfg, run_jobs=False)
    with served(app) as base:
        yield cfg, base


@pytest.fixture
def world(server: tuple[Settings, str]) -> Iterator[World]:
    """Resources of its own for each service's scenarios (another service's scenarios may
    have closed an account or suspended a provider)."""
    cfg, base = server
    with httpx.Client(base_url=base, timeout=30) as client:
        yield seed(client, cfg)


def every_link_source_is_a_root(
    operations: Any, transitions: ApiTransitions, graph: Any
) -> RootTransitions:
    """Each operation with links may start a scenario. schemathesis would start only from
    those whose inputs some operation of the same schema produces, so the ledger's grants
    (their account comes from the accounts service) would never run."""
    roots = RootTransitions()
    roots.reliable = {label for label, t in transitions.operations.items() if t.outgoing}
    return roots


def examples(world: World) -> dict[str, Callable[[], Any]]:
    """Bodies a user would send, by operation, chosen over generated ones half of the time:
    random ones rarely pass the domain's rules (an ISO country, an adult's birth date), and
    what is never created is never followed."""
    this_year = world.known["year"]
    return {
        "POST /v1/accounts": account_body,
        "POST /v1/providers": provider_body,
        "POST /v1/courses": course_body,
        "POST /v1/ledger/grants": lambda: {
            "account_id": world.known["account_id"],
            "amount": 1_000,
            "funder_id": "state",
            "reason_code": "top_up",
        },
        "PUT /v1/ledger/policies/{year}": dict,
        "POST /v1/ledger/allocations": lambda: {"year": this_year},
    }


def known_ids(world: World, values: Any) -> st.SearchStrategy[Any]:
    """``values`` as generated or, half of the time, with the fields named like a known
    resource's id set to it."""
    if not isinstance(values, dict) or not values.keys() & world.known.keys():
        return st.just(values)
    mine = {name: world.known[name] for name in values.keys() & world.known.keys()}
    return st.sampled_from([values, {**values, **mine}])


@dataclass
class Followed:
    """What the links led to: answers by status class, to show the scenarios went deep."""

    answers: Counter[tuple[str, int]] = field(default_factory=Counter)
    scenarios: int = 0
    failures: list[str] = field(default_factory=list)


def machine(world: World, service: str, followed: Followed) -> type[APIStateMachine]:
    """The state machine of ``service``'s published schema, its declared links only,
    calling the served app as the first role each step admits."""
    published = build_app([definition(service)], world.settings, run_jobs=False).openapi()
    schema = schemathesis.openapi.from_dict(published)
    # the links the service declares, not the ones schemathesis would guess
    schema.config.phases.stateful.inference.algorithms = []
    bodies = examples(world)

    @schema.hook("flatmap_body")
    def body(context: HookContext, generated: Any) -> st.SearchStrategy[Any]:
        operation = context.operation
        assert operation is not None
        make = bodies.get(f"{operation.method.upper()} {operation.path}")
        if make is None:
            return known_ids(world, generated)
        return st.booleans().map(lambda realistic: make() if realistic else generated)

    @schema.hook("flatmap_path_parameters")
    def path(_context: HookContext, generated: Any) -> st.SearchStrategy[Any]:
        return known_ids(world, generated)

    @schema.hook("flatmap_query")
    def query(_context: HookContext, generated: Any) -> st.SearchStrategy[Any]:
        return known_ids(world, generated)

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def teardown(self) -> None:
            followed.scenarios += 1
            super().teardown()

        def step(self, input: StepInput) -> StepOutput:
            output = super().step(input)
            if input.transition is not None:
                status = output.response.status_code
                followed.answers[(output.case.operation.label, status // 100)] += 1
            return output

        def call(self, case: schemathesis.Case, **kwargs: Any) -> Response:
            for role in ROLES:
                headers = {
                    "Authorization": f"Bearer {world.tokens[role]}",
                    "Idempotency-Key": str(uuid.uuid4()),
                }
                response = case.call(base_url=world.base, headers=headers, timeout=30)
                if response.status_code not in (401, 403, 404):
                    break
            return response

        def validate_response(
            self,
            response: Response,
            case: schemathesis.Case,
            additional_checks: Any = None,
            **kwargs: Any,
        ) -> None:
            try:
                case.validate_response(
                    response,
                    checks=[not_a_server_error, response_schema_conformance],
                    transport_kwargs={"base_url": world.base},
                )
            except Exception as exc:
                # kept here too: a replay that takes another turn must not hide it
                followed.failures.append(f"{case.operation.label}: {exc}"[:3000])
                raise

    return Machine


@pytest.mark.parametrize("service", SERVICES)
def test_following_links_never_errs(
    world: World, service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Create, then read and change what was created, along the declared links: no 5xx,
    every answer as the schema says."""
    monkeypatch.setattr(stateful, "classify_root_transitions", every_link_source_is_a_root)
    followed = Followed()
    workflow = machine(world, service, followed)
    for _ in range(RUNS):
        if followed.scenarios >= SCENARIOS:
            break
        try:
            workflow.run(
                settings=settings(
                    max_examples=SCENARIOS - followed.scenarios,
                    stateful_step_count=STEPS,
                    deadline=None,
                    database=None,
                    derandomize=IN_CI,  # CI replays the same scenarios; developers explore
                    suppress_health_check=list(HealthCheck),
                    phases=[Phase.explicit, Phase.generate],  # a failure is reported as found
                )
            )
        except FlakyStrategyDefinition:
            # the server remembers what earlier scenarios did, so replaying a scenario's
            # beginning can take another turn (a second registration is a 409); Hypothesis
            # stops there, and the next run goes on (a failure is a FlakyFailure, not this)
            continue
    assert not followed.failures, "\n\n".join(dict.fromkeys(followed.failures))
    # the scenarios went past creation: a link led to an operation that succeeded
    succeeded = sorted(label for (label, kind), _ in followed.answers.items() if kind == 2)
    assert succeeded, f"{followed.scenarios} scenarios, no link led to a success: {followed}"
