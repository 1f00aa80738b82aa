"""Session fixtures: a real PostgreSQL (embedded wheel), a real Kafka broker (Maven jars) and
a real OpenID Connect provider (Maven jars).

Each test that needs a database gets a fresh database on the shared server. With CI=true
a missing PostgreSQL, Kafka or OIDC provider fails the run instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support import IN_CI, create_database

if TYPE_CHECKING:
    from ila.kafka import KafkaBroker
    from ila.kafka_cluster import KafkaCluster
    from ila.oidc_provider import OidcProvider


def _unavailable(what: str, exc: BaseException) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required in CI but could not start: {exc}")
    pytest.skip(f"{what} unavailable: {exc}")


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    url = os.environ.get("ILA_TEST_DATABASE_URL")
    if url:
        yield url
        return
    from ila.postgres import embedded_postgres_url

    root = Path(tempfile.mkdtemp(prefix="ila-pg-", dir=os.environ.get("ILA_TEST_TMP")))
    try:
        admin = embedded_postgres_url(root)
    except Exception as exc:  # pragma: no cover - environment problem
        _unavailable("PostgreSQL", exc)
        raise
    yield admin
    from ila.postgres import stop_embedded

    try:
        import embedded_postgres

        # its data goes next: no shutdown checkpoint (a fast stop took 4 s after the payments
        # suite alone)
        stop_embedded(root, mode="immediate")
        embedded_postgres.get_server(root / "postgres", cleanup_mode="stop").cleanup()
    finally:
        _remove_in_background(root)


def _remove_in_background(path: Path) -> None:
    """Delete ``path`` from a process of its own that the run does not wait for. The test
    server's data directory holds a database per test: deleting it took 9 s after the
    payments suite alone (104 tests), and the end of a full run waited 45 s on teardown."""
    subprocess.Popen(
        ["rm", "-rf", "--", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


@pytest.fixture
async def db_url(pg_admin_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test."""
    yield await create_database(pg_admin_url)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    bootstrap = os.environ.get("ILA_TEST_KAFKA_BOOTSTRAP")
    if bootstrap:
        yield bootstrap
        return
    from ila.kafka import start_broker, stop_broker

    workdir = Path(tempfile.mkdtemp(prefix="ila-kafka-", dir=os.environ.get("ILA_TEST_TMP")))
    try:
        broker = start_broker(workdir)
    except Exception as exc:  # pragma: no cover - environment problem
        _unavailable("Kafka", exc)
        raise
    yield broker.bootstrap
    stop_broker(broker)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def secure_kafka() -> Iterator[KafkaBroker]:
    """A second broker whose only client listener is SASL_SSL (SCRAM, a CA this run made)
    with ACLs enforced: started once, on first use, for the tests of transport security."""
    from ila.kafka import start_broker, stop_broker

    workdir = Path(tempfile.mkdtemp(prefix="ila-kafka-tls-", dir=os.environ.get("ILA_TEST_TMP")))
    try:
        broker = start_broker(workdir, secure=True)
    except Exception as exc:  # pragma: no cover - environment problem
        _unavailable("Kafka (SASL_SSL)", exc)
        raise
    yield broker
    stop_broker(broker)


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[KafkaCluster]:
    """Three KRaft brokers on 127.0.0.1 (replication 3, min.insync.replicas 2), for the tests
    that kill and restart a broker; shared by the session, so each test leaves every node
    running when it ends."""
    from ila.kafka_cluster import start_cluster, stop_cluster

    workdir = Path(tempfile.mkdtemp(prefix="ila-kcluster-", dir=os.environ.get("ILA_TEST_TMP")))
    try:
        cluster = start_cluster(workdir, 3)
    except Exception as exc:  # pragma: no cover - environment problem
        _unavailable("a Kafka cluster", exc)
        raise
    yield cluster
    stop_cluster(cluster, timeout=15)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    """The OIDC test provider (mock-oauth2-server) on a free 127.0.0.1 port, started once."""
    from ila.oidc_provider import start_provider, stop_provider

    workdir = Path(tempfile.mkdtemp(prefix="ila-oidc-", dir=os.environ.get("ILA_TEST_TMP")))
    try:
        provider = start_provider(workdir)
    except Exception as exc:  # pragma: no cover - environment problem
        _unavailable("the OIDC test provider", exc)
        raise
    yield provider
    stop_provider(provider)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium for the page tests (installed if missing and possible)."""
    from tests.integration.support.browser import chromium as debian_chromium

    return debian_chromium()
