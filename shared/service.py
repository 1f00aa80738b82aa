"""Assembling services into an ASGI application.

A service declares a :class:`ServiceDefinition` (its router, its event handlers, its
background jobs). :func:`build_app` wires one or several of them onto a FastAPI app: the
database (configured, or the one the caller provides), migrations, the bus and its topics,
the outbox relay and the inbox consumer, in ``lifespan`` and never at import time, plus the
problem handlers, the guards and the operations endpoints (:mod:`shared.ops`). ``ila run``
builds all four on the in-process bus; ``ila serve <service>`` builds one on Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.approvals import FourEyes
from shared.auth import TokenVerifier
from shared.bus import Bus, set_topic_prefix, topic_for
from shared.bus.base import dlt_topic
from shared.bus.security import KafkaSecurity
from shared.bus.topics import TopicSpec, ensure_topics, readers
from shared.db import make_engine, make_read_sessionmaker, make_sessionmaker, migrate, transaction
from shared.guards import BodyLimit, SecurityHeaders
from shared.inbox import EventConsumer
from shared.listen import announced
from shared.logs import configure_logging
from shared.ops import install_operations
from shared.outbox import Outbox, Relay
from shared.problems import install_problem_handlers
from shared.routing import GatedRouter, remember_routes_versions
from shared.settings import Settings

log = logging.getLogger(__name__)

Job = Callable[["ServiceRuntime"], Coroutine[Any, Any, None]]

# how long a consumer that only keeps read models waits for more events
# (ServiceDefinition.consumer_fetch_wait_ms): at 100 enrolments/s over Kafka, accounts' and
# catalogue's consumers applied two events a transaction and took a seventh of the machine's
# cores; fetching up to 50 ms of events at a time cut that to a twentieth, and the saga's
# median from 80 to 52 ms
PROJECTION_FETCH_WAIT_MS = 50


@dataclass
class ServiceDefinition:
    name: str
    router: APIRouter
    title: str
    # builds the service's components (its handlers, config, clock) and registers its event
    # handlers on the runtime's consumer; what it returns is kept as ``rt.components``
    setup: Callable[[ServiceRuntime], object] = lambda rt: None
    # long-running background jobs (sweeps); each gets the runtime and runs until cancelled
    jobs: Sequence[Job] = ()
    topic_config: dict[str, str] = field(default_factory=dict)
    # a database role the service's sessions run as (its migrations run as the owner)
    db_role: str | None = None
    # request body limits larger than the default, by exact path (bulk uploads)
    body_limits: dict[str, int] = field(default_factory=dict)
    # how long its consumer may wait for more events before the broker answers a fetch. 0
    # for a service in a saga (each event is a step someone waits for); a service whose
    # consumer only keeps read models applies fewer, larger batches, and leaves the cores
    # to the saga's steps (Kafka only)
    consumer_fetch_wait_ms: int = 0


@dataclass
class ServiceRuntime:
    name: str
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    bus: Bus
    outbox: Outbox
    relay: Relay
    consumer: EventConsumer
    state: dict[str, Any] = field(default_factory=dict)
    # the service's four-eyes proposals, when it guards money (set by its setup)
    four_eyes: FourEyes | None = None
    # what the service's setup built; read it typed with :func:`components_of`
    components: object = None
    # sessions for reads alone (no transaction: see shared.db.make_read_sessionmaker)
    reads: async_sessionmaker[AsyncSession] = field(init=False)

    def __post_init__(self) -> None:
        self.reads = make_read_sessionmaker(self.engine)

    def uow(self) -> AbstractAsyncContextManager[AsyncSession]:
        """One transaction; the relay is woken after it commits."""
        return transaction(self.sessions)


C = TypeVar("C")


def components_of(rt: ServiceRuntime, kind: type[C]) -> C:
    """The components the service's setup built, as the type its dependency module expects."""
    components = rt.components
    if not isinstance(components, kind):
        raise RuntimeError(f"service {rt.name} was not set up with {kind.__name__}")
    return components


def runtime_of(service: str) -> Callable[[Request], Awaitable[ServiceRuntime]]:
    # async: FastAPI runs a plain function dependency in its thread pool, on every request
    async def dependency(request: Request) -> ServiceRuntime:
        runtime: ServiceRuntime = request.app.state.runtimes[service]
        return runtime

    return dependency


def topic_specs(definitions: Sequence[ServiceDefinition], partitions: int) -> list[TopicSpec]:
    """Each service's topic (with its configuration) and its dead-letter topic."""
    specs = []
    for d in definitions:
        specs.append(TopicSpec(topic_for(d.name), partitions, dict(d.topic_config)))
        specs.append(TopicSpec(dlt_topic(d.name), 1, {"retention.ms": "-1"}))
    return specs


def build_app(
    definitions: Sequence[ServiceDefinition],
    settings: Settings,
    *,
    bus: Bus | None = None,
    all_topics: Sequence[ServiceDefinition] | None = None,
    run_jobs: bool = True,
    default_database_url: Callable[[], str] | None = None,
) -> FastAPI:
    """An app serving ``definitions``. ``all_topics``: services whose topics to create.

    A service without a configured database URL gets ``default_database_url()`` (called
    once, in a worker thread, when the app starts: the composition root passes the embedded
    server's); without one, such a service is a configuration error.
    """
    remember_routes_versions()  # (shared.routing: FastAPI's per-request walk, done once)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, settings.log_json)
        set_topic_prefix(settings.kafka_topic_prefix)
        the_bus = bus or _make_bus(settings)
        engines: dict[str, AsyncEngine] = {}
        runtimes: dict[str, ServiceRuntime] = {}
        fallback_url: str | None = None
        for d in definitions:
            url = settings.database_url_for(d.name)
            if url is None:
                if default_database_url is None:
                    raise RuntimeError(
                        f"no database URL for {d.name}: set ILA_DATABASE_URL "
                        f"or ILA_{d.name.upper()}_DATABASE_URL"
                    )
                if fallback_url is None:
                    fallback_url = await asyncio.to_thread(default_database_url)
                url = fallback_url
            if url not in engines:
                engines[url] = make_engine(url, **settings.db_pool(), **settings.db_tls())
            engine = engines[url]
            await migrate(engine, d.name)
            if d.db_role:
                engine = make_engine(
                    url,
                    **settings.db_pool(),
                    connect_args={"server_settings": {"role": d.db_role}},
                    **settings.db_tls(),
                )
                engines[f"{url}#{d.db_role}"] = engine
            sessions = make_sessionmaker(engine)
            outbox = Outbox(d.name, actor_pepper=settings.actor_pepper)
            runtime = ServiceRuntime(
                name=d.name,
                settings=settings,
                engine=engine,
                sessions=sessions,
                bus=the_bus,
                outbox=outbox,
                relay=Relay(
                    outbox,
                    sessions,
                    the_bus,
                    batch_size=settings.relay_batch_size,
                    idle_interval=settings.relay_idle_interval,
                    park_after=settings.relay_park_after,
                    max_event_bytes=settings.outbox_max_event_bytes,
                    readers=readers(d.name),
                    max_bulk_lag=settings.relay_bulk_max_lag,
                    pipeline_seconds=settings.relay_pipeline_seconds,
                ),
                consumer=EventConsumer(
                    d.name,
                    sessions,
                    the_bus,
                    max_attempts=settings.consumer_max_attempts,
                    fetch_wait_ms=d.consumer_fetch_wait_ms,
                ),
            )
            built = d.setup(runtime)
            if built is not None:
                runtime.components = built
            runtime.consumer.attach()
            runtimes[d.name] = runtime
        if settings.kafka_bootstrap and bus is None:
            await _ensure_topics(
                settings, settings.kafka_bootstrap, the_bus, all_topics or definitions, definitions
            )
        app.state.runtimes = runtimes
        app.state.bus = the_bus
        await the_bus.start()
        for runtime in runtimes.values():
            # events parked before an upgrade that this version can read
            await runtime.consumer.replay_parked()
        for runtime in runtimes.values():
            runtime.relay.start()
        tasks = [
            asyncio.create_task(job(runtimes[d.name]), name=f"{d.name}-job")
            for d in definitions
            if run_jobs
            for job in d.jobs
        ]
        log.info("started %s", ", ".join(runtimes))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for runtime in runtimes.values():
                await runtime.relay.stop()
            await the_bus.stop()
            for engine in engines.values():
                await announced(engine)
                await engine.dispose()

    label = definitions[0].name if len(definitions) == 1 else "ila"
    app = FastAPI(
        title=definitions[0].title if len(definitions) == 1 else "Individual Learning Accounts",
        version="1.0.0",
        lifespan=lifespan,
        # our own Prometheus metrics and logs; FastAPI's OpenTelemetry hooks would look up
        # the global providers on every request for nothing (a profile shows it)
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.token_verifier = TokenVerifier(settings)
    app.state.settings = settings
    install_problem_handlers(app)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(
        BodyLimit,
        limit=settings.max_body_bytes,
        overrides={path: n for d in definitions for path, n in d.body_limits.items()},
    )
    install_operations(app, label, settings)
    from shared.dead_letters_api import dead_letters_router

    for d in definitions:
        # the dead letters before the service's own routes: ``/v1/accounts/dead-letters``
        # is no account id
        app.include_router(GatedRouter(dead_letters_router(d.name), d.router))
    return app


def standalone_runtime(
    definition: ServiceDefinition, settings: Settings, engine: AsyncEngine
) -> ServiceRuntime:
    """A service's runtime outside its server (the operators' tools): its consumer's
    handlers are registered, nothing is started, and the events its handlers stage wait in
    the outbox for the service's relay."""
    from shared.bus.inprocess import InProcessBus

    bus = InProcessBus()
    sessions = make_sessionmaker(engine)
    outbox = Outbox(definition.name, actor_pepper=settings.actor_pepper)
    runtime = ServiceRuntime(
        name=definition.name,
        settings=settings,
        engine=engine,
        sessions=sessions,
        bus=bus,
        outbox=outbox,
        relay=Relay(outbox, sessions, bus),
        consumer=EventConsumer(
            definition.name, sessions, bus, max_attempts=settings.consumer_max_attempts
        ),
    )
    built = definition.setup(runtime)
    if built is not None:
        runtime.components = built
    return runtime


def _make_bus(settings: Settings) -> Bus:
    if settings.kafka_bootstrap:
        from shared.bus.kafka import KafkaBus

        return KafkaBus(
            settings.kafka_bootstrap,
            client_id="ila",
            security=KafkaSecurity.from_settings(settings),
        )
    from shared.bus.inprocess import InProcessBus

    return InProcessBus()


async def _ensure_topics(
    settings: Settings,
    bootstrap: str,
    bus: Bus,
    every: Sequence[ServiceDefinition],
    served: Sequence[ServiceDefinition],
) -> None:
    security = KafkaSecurity.from_settings(settings)
    if not security.uses_sasl:
        # one open broker: whoever starts first creates every service's topics
        await ensure_topics(
            bootstrap,
            topic_specs(every, settings.kafka_partitions),
            replication_factor=settings.kafka_replication_factor,
        )
        return
    # A principal may create only its own topics (docs/security.md): create those, wait
    # for the ones this process reads until their owners have created them.
    await ensure_topics(
        bootstrap,
        topic_specs(served, settings.kafka_partitions),
        security=security,
        awaited=sorted({topic for _, topics, _ in bus.subscriptions for topic in topics}),
        within=120.0,
        replication_factor=settings.kafka_replication_factor,
    )


async def drain_outboxes(app: FastAPI) -> None:
    """Publish everything pending now (tests and the CLI)."""
    for rt in app.state.runtimes.values():
        await rt.relay.drain()


__all__ = [
    "ServiceDefinition",
    "ServiceRuntime",
    "build_app",
    "components_of",
    "drain_outboxes",
    "runtime_of",
    "standalone_runtime",
    "transaction",
]
