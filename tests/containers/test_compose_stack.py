"""The images built by `make images`, the stack of deploy/compose.yaml started with
podman-compose, and the flow of one euro over HTTP against it: accounts opened, the year's
allocation approved and run, a course approved, enrolments confirmed (credit reserved) and
claims captured, while one Kafka broker and the payments service are killed mid-run
(SIGKILL). At the end every balance the ledger serves equals the balance rebuilt from the
ledger's topic alone (`ila audit replay`) and the money adds up.

Slow (image builds, three JVMs): marked ``containers``. Where podman is missing it is
skipped, except under CI=true, where a failed build or start fails the test.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.settings import SERVICES, Settings
from tests.e2e.support import allocate
from tests.integration.support.accounts import BODY
from tests.integration.support.catalogue import course_body, provider_body
from tests.support import IN_CI, bearer, eventually, free_port

pytestmark = [pytest.mark.containers, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = REPO / "deploy" / "containers" / "containers.conf"
BIN = Path(sys.executable).parent
LEARNERS = 3
PRICE = 40_000
COVERED = 30_000  # the price less the learner's participation fee
GRANT = 50_000


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF), **(extra or {})}


@pytest.fixture(scope="module")
def images() -> None:
    if shutil.which("podman") is None and not IN_CI:
        pytest.skip("podman is not installed (make images installs it)")
    done = subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", f"BIN={BIN}", "images"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if done.returncode != 0:
        _unavailable(f"make images failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")


class Stack:
    """One compose project on free loopback ports with fresh secrets."""

    def __init__(self, workdir: Path) -> None:
        self.project = f"ila-test-{uuid.uuid4().hex[:8]}"
        self.ports = {
            name: free_port()
            for name in (
                "ILA_KAFKA1_PORT",
                "ILA_KAFKA2_PORT",
                "ILA_KAFKA3_PORT",
                "ILA_KAFKA1_CONTROLLER_PORT",
                "ILA_KAFKA2_CONTROLLER_PORT",
                "ILA_KAFKA3_CONTROLLER_PORT",
                "ILA_PG_PORT",
                *(f"ILA_{s.upper()}_PORT" for s in SERVICES),
            )
        }
        self.secrets = {
            name: secrets.token_urlsafe(32)
            for name in (
                "ILA_POSTGRES_PASSWORD",
                *(f"ILA_DB_PASSWORD_{s.upper()}" for s in SERVICES),
                "ILA_JWT_SECRET",
                "ILA_NATIONAL_ID_PEPPER",
                "ILA_CREDENTIAL_KEY_SEED",
            )
        }
        self.env_file = workdir / "compose.env"
        self.env_file.write_text(
            "".join(f"{k}={v}\n" for k, v in {**self.ports, **self.secrets}.items())
        )
        self.log = workdir / "compose.log"

    def make(self, target: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """`make compose-up` / `compose-down` on this project: the same steps as by hand."""
        command = [
            "make",
            "--no-print-directory",
            "-o",
            ".venv/.installed",
            f"BIN={BIN}",
            f"COMPOSE_PROJECT={self.project}",
            f"COMPOSE_ENV={self.env_file}",
            target,
        ]
        done = subprocess.run(
            command,
            cwd=REPO,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        with self.log.open("a") as log:
            log.write(f"$ {' '.join(command)}\n{done.stdout}\n{done.stderr}\n")
        return done

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def podman(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", *args], env=_env(), capture_output=True, text=True, timeout=120, check=False
        )

    def restarts(self, service: str) -> int:
        done = self.podman("inspect", "--format", "{{.RestartCount}}", self.container(service))
        return int(done.stdout.strip() or -1)

    def crash(self, service: str) -> None:
        """SIGKILL the container's process from outside, as a crash would (``podman kill``
        counts as stopped by hand, and the restart policy would leave it down)."""
        done = self.podman("inspect", "--format", "{{.State.Pid}}", self.container(service))
        os.kill(int(done.stdout.strip()), signal.SIGKILL)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[f'ILA_{service.upper()}_PORT']}"

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.ports[f'ILA_KAFKA{i}_PORT']}" for i in (1, 2, 3))

    def settings(self) -> Settings:
        return Settings(
            env="test",
            jwt_secret=self.secrets["ILA_JWT_SECRET"],
            jwt_issuer="ila-compose",
        )


@pytest.fixture(scope="module")
def stack(images: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    artifacts = REPO / "test-artifacts" / "containers"
    artifacts.mkdir(parents=True, exist_ok=True)
    s = Stack(tmp_path_factory.mktemp("compose"))
    try:
        up = s.make("compose-up")
        if up.returncode != 0:
            pytest.fail(f"make compose-up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}")
        yield s
    finally:
        for service in ("kafka2", "payments", "ledger"):
            logs = s.podman("logs", "--tail", "200", s.container(service))
            (artifacts / f"{service}.log").write_text(logs.stdout + logs.stderr)
        s.make("compose-down", timeout=300)
        shutil.copy(s.log, artifacts / "compose.log")


async def _ready(c: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await c.get(f"{url}/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


async def _json(c: httpx.AsyncClient, url: str, headers: dict[str, str]) -> Any:
    r = await c.get(url, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_one_euro_over_the_compose_stack_survives_a_broker_and_a_service_killed(
    stack: Stack,
) -> None:
    settings = stack.settings()
    agency = bearer(settings, "agency", agency_id="pes-fr")
    admin = bearer(settings, "admin")
    finance = bearer(settings, "finance")
    acc, led, cat, pay = (stack.url(s) for s in SERVICES)
    async with httpx.AsyncClient(timeout=20) as c:
        for url in (acc, led, cat, pay):
            await eventually(lambda url=url: _ready(c, url), timeout=300, interval=1)

        # accounts opened by the agency; the ledger opens a wallet for each
        accounts = []
        for _ in range(LEARNERS):
            body = {**BODY, "national_id": "C1-" + uuid.uuid4().hex[:10]}
            body.update(employment_status="employed", qualification_level=5, need_flags=[])
            r = await c.post(f"{acc}/v1/accounts", json=body, headers=agency)
            assert r.status_code == 201, r.text
            accounts.append(r.json()["account_id"])

        def balance_of(account: str) -> Any:
            learner = bearer(settings, "learner", sub=account)
            return _json(c, f"{led}/v1/ledger/accounts/{account}/balance", learner)

        for account in accounts:
            await eventually(
                lambda a=account: _balance_or_empty(c, led, settings, a),
                lambda b: b.get("status") == "open",
                timeout=120,
                interval=0.5,
            )

        # the year's allocation, proposed by an admin and approved by finance
        run = await allocate(c, led, date.today().year, admin, finance)
        await eventually(
            lambda: _json(c, run, admin), lambda r: r["status"] == "finished", timeout=120
        )
        for account in accounts:
            assert (await balance_of(account))["available"] == GRANT

        # a provider accredited, its course approved
        r = await c.post(f"{cat}/v1/providers", json=provider_body(), headers=agency)
        assert r.status_code == 201, r.text
        provider_id = r.json()["provider_id"]
        r = await c.post(
            f"{cat}/v1/providers/{provider_id}/accredit",
            json={"reason_code": "qa_audit_passed"},
            headers=agency,
        )
        assert r.status_code == 200, r.text
        provider = bearer(settings, "provider", provider_id=provider_id)
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=60)
        end = start + timedelta(seconds=10)
        course = course_body(price=PRICE)
        course["sessions"][0].update(start=start.isoformat(), end=end.isoformat())
        r = await c.post(f"{cat}/v1/courses", json=course, headers=provider)
        assert r.status_code == 201, r.text
        course_id = r.json()["course_id"]
        r = await c.post(f"{cat}/v1/courses/{course_id}/submit", headers=provider)
        assert r.status_code == 200, r.text
        r = await c.post(
            f"{cat}/v1/courses/{course_id}/approve",
            json={"reason_code": "meets_criteria"},
            headers=agency,
        )
        assert r.status_code == 200, r.text

        async def enrol(account: str) -> str:
            proposal = {
                "account_id": account,
                "course_id": course_id,
                "session_id": course["sessions"][0]["session_id"],
            }
            r = await eventually(
                lambda: _post_or_none(c, f"{pay}/v1/enrolments", proposal, provider),
                lambda resp: resp is not None and resp.status_code == 202,
                timeout=180,
                interval=1,
            )
            assert r is not None
            eid: str = r.json()["enrolment_id"]
            learner = bearer(settings, "learner", sub=account)
            r = await eventually(
                lambda: _post_or_none(c, f"{pay}/v1/enrolments/{eid}/confirm", {}, learner),
                lambda resp: resp is not None and resp.status_code == 202,
                timeout=180,
                interval=1,
            )
            e = await eventually(
                lambda: _get_or_empty(c, f"{pay}/v1/enrolments/{eid}", learner),
                lambda e: e.get("status") in ("confirmed", "rejected"),
                timeout=180,
                interval=1,
            )
            assert e["status"] == "confirmed", e
            return eid

        enrolments = [await enrol(accounts[0])]

        # mid-run: a broker and the payments service crash (their processes SIGKILLed); the
        # restart policy brings them back while the flow goes on through the other brokers
        restarts = {name: stack.restarts(name) for name in ("kafka2", "payments")}
        for name in restarts:
            stack.crash(name)
        for account in accounts[1:]:
            enrolments.append(await enrol(account))
        for name, before in restarts.items():
            await eventually(
                lambda name=name: asyncio.to_thread(stack.restarts, name),
                lambda count, before=before: count > before,
                timeout=120,
                interval=1,
            )

        # after the session the provider claims, and the ledger captures the credit
        await eventually(
            lambda: _now(), lambda now: now > end + timedelta(seconds=1), timeout=120, interval=1
        )
        for eid in enrolments:
            r = await eventually(
                lambda eid=eid: _post_or_none(
                    c,
                    f"{pay}/v1/claims",
                    {
                        "enrolment_id": eid,
                        "milestone": "completion",
                        "evidence": {
                            "started_on": str(start.date()),
                            "completed_on": str(end.date()),
                            "completion_rate": 90,
                            "certified": True,
                            "grade": "pass",
                        },
                    },
                    {**provider, "Idempotency-Key": f"claim-{eid}"},
                ),
                lambda resp: resp is not None and resp.status_code == 202,
                timeout=120,
                interval=1,
            )
            assert r is not None
            claim = r.json()["claim_id"]
            await eventually(
                lambda claim=claim: _get_or_empty(c, f"{pay}/v1/claims/{claim}", provider),
                lambda cl: cl.get("status") == "captured",
                timeout=180,
                interval=1,
            )

        for account in accounts:
            b = await balance_of(account)
            assert b["spent_total"] == COVERED and b["reserved"] == 0, b
            assert b["available"] == GRANT - COVERED, b

    # the ledger's topic alone rebuilds every balance the ledger serves
    auditor = bearer(settings, "auditor")["Authorization"].split(" ", 1)[1]
    replay = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "ila.cli",
            "audit",
            "replay",
            "--bootstrap",
            stack.bootstrap,
            "--url",
            led,
            "--token",
            auditor,
        ],
        cwd=REPO,
        env={**os.environ, "ILA_ENV": "test", "ILA_KAFKA_BOOTSTRAP": stack.bootstrap},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr


async def _balance_or_empty(
    c: httpx.AsyncClient, led: str, settings: Settings, account: str
) -> dict[str, Any]:
    learner = bearer(settings, "learner", sub=account)
    return await _get_or_empty(c, f"{led}/v1/ledger/accounts/{account}/balance", learner)


async def _get_or_empty(c: httpx.AsyncClient, url: str, headers: dict[str, str]) -> Any:
    try:
        r = await c.get(url, headers=headers)
    except httpx.HTTPError:
        return {}  # the service is being restarted
    return r.json() if r.status_code == 200 else {}


async def _post_or_none(
    c: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response | None:
    try:
        return await c.post(url, json=body, headers=headers)
    except httpx.HTTPError:
        return None  # the service is being restarted


async def _now() -> datetime:
    return datetime.now(UTC)
