"""deploy/compose.yaml conforms to the compose specification (its JSON schema from the
compose-go module, brought by ``make manifests-tools``) and keeps what the stack promises:
three brokers with three copies and two in sync, the ledger's topic kept forever, a
migration per service before the services, health checks and restart policies, and no
secret written in the file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ila.manifests import COMPOSE_SCHEMA, compose_problems
from shared.bus import topic_for
from shared.settings import SERVICES
from tests.support import IN_CI

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose.yaml"
BROKEN = Path(__file__).parent / "fixtures" / "broken-compose.yaml"


@pytest.fixture(scope="module", autouse=True)
def schema() -> None:
    if not (REPO / COMPOSE_SCHEMA).exists():
        message = f"run `make manifests-tools` first; missing: {COMPOSE_SCHEMA}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


def stack() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document["services"]  # type: ignore[no-any-return]


def test_the_compose_file_conforms_to_the_compose_specification() -> None:
    assert compose_problems(COMPOSE) == []


def test_a_broken_compose_file_is_caught() -> None:
    problems = compose_problems(BROKEN)
    text = " ".join(problems)
    assert "helthcheck" in text and "when_ready" in text, problems


def test_three_brokers_with_three_copies_and_two_in_sync() -> None:
    services = stack()
    brokers = [s for name, s in services.items() if re.fullmatch(r"kafka\d", name)]
    assert len(brokers) == 3
    assert {b["environment"]["KAFKA_NODE_ID"] for b in brokers} == {"1", "2", "3"}
    for broker in brokers:
        assert broker["environment"]["KAFKA_REPLICATION_FACTOR"] == "3"
        assert broker["environment"]["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert broker["restart"] == "unless-stopped" and broker["healthcheck"]


def test_topics_are_made_with_their_copies_and_retention_before_any_service_starts() -> None:
    from ila.topics import ONE_YEAR_MS, specs

    services = stack()
    job = services["topics"]
    assert job["entrypoint"][-3:] == ["python", "-m", "ila.topics"]
    args = dict(zip(job["command"][::2], job["command"][1::2], strict=True))
    assert args == {
        "--replication": "3",
        "--min-insync": "2",
        "--retention-ms": str(ONE_YEAR_MS),
    }
    topics = {t.name: t.config for t in specs(6, ONE_YEAR_MS, 2)}
    expected = {topic_for(s) for s in SERVICES} | {f"{topic_for(s)}.dlt" for s in SERVICES}
    assert set(topics) == expected
    assert topics[topic_for("ledger")]["retention.ms"] == "-1"
    assert topics[topic_for("accounts")]["retention.ms"] == str(ONE_YEAR_MS)
    for name in SERVICES:
        depends = services[name]["depends_on"]
        assert depends["topics"]["condition"] == "service_completed_successfully"
        for other in SERVICES:
            assert depends[f"{other}-migrate"]["condition"] == "service_completed_successfully"


def test_each_service_has_its_migration_health_check_and_restart_policy() -> None:
    services = stack()
    for name in SERVICES:
        migrate = services[f"{name}-migrate"]
        assert migrate["command"] == ["migrate", name] and migrate["restart"] == "no"
        service = services[name]
        assert service["command"][:2] == ["serve", name]
        assert service["restart"] == "unless-stopped"
        assert "/readyz" in service["healthcheck"]["test"]
        url = service["environment"][f"ILA_{name.upper()}_DATABASE_URL"]
        assert f"/{name}" in url and url.startswith(f"postgresql+asyncpg://{name}:")


def test_no_secret_is_written_in_the_file() -> None:
    for name, service in stack().items():
        for key, value in (service.get("environment") or {}).items():
            if any(w in key for w in ("PASSWORD", "SECRET", "PEPPER", "SEED")):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", str(value)), f"{name}: {key}"
            if key.endswith("DATABASE_URL"):
                assert "${ILA_DB_PASSWORD_" in value, f"{name}: {key}"
