"""Event payload base class, the registry of event types and the CloudEvents envelope.

Every event published between services is a pydantic model registered here under a stable
dotted name (``<service>.<EventName>``) and a schema version. On the wire it travels as a
CloudEvents 1.0 structured-mode JSON document whose ``type`` is ``ila.<name>.v<version>``
and whose ``data`` is the payload; the extension attributes ``correlationid``,
``causationid``, ``actor`` and ``schemaversion`` carry the tracing and versioning.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from shared.canonical import canonical_json

TYPE_PREFIX = "ila."

ACTOR_MARK = "x-ila-actor"
Actor = Annotated[
    str,
    Field(
        description="Who acted: a person as a keyed pseudonym ``role:p-<32 hex>`` "
        "(shared.pseudonym), never a token's subject; a system actor as it is.",
        json_schema_extra={ACTOR_MARK: True},
    ),
]
"""A field that names who did something. The outbox writes the pseudonym of a person into
every such field (as into the envelope's ``actor``), so no event carries a token subject."""


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:  # already UTC: the common case, and astimezone is not free
        return value
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:00-05:00 is a valid aware datetime beyond the last UTC one
        raise ValueError("out of range once converted to UTC") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""An aware datetime, normalised to UTC (a naive one is refused, and so is one that has no
UTC equivalent)."""


class Event(BaseModel):
    """Base of every event payload. Subclasses are registered with :func:`event`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_name: ClassVar[str] = ""
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = ""

    def aggregate_id(self) -> str:
        """The key events are ordered by (partition key and CloudEvents subject)."""
        raise NotImplementedError

    @classmethod
    def cloudevent_type(cls) -> str:
        return f"{TYPE_PREFIX}{cls.event_name}.v{cls.schema_version}"


E = TypeVar("E", bound=type[Event])

_REGISTRY: dict[str, type[Event]] = {}


def event(name: str, *, version: int = 1) -> Callable[[E], E]:
    """Register an event payload model under ``name`` (``service.EventName``) and ``version``.

    The service part of the name is also the Kafka topic the event is published on.
    """

    def register(cls: E) -> E:
        service, _, short = name.partition(".")
        if not service or not short:
            raise ValueError(f"event name must be '<service>.<Event>', got {name!r}")
        cls.event_name = name
        cls.schema_version = version
        cls.topic = service
        key = cls.cloudevent_type()
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise ValueError(f"event type {key} registered twice")
        _REGISTRY[key] = cls
        return cls

    return register


def registry() -> dict[str, type[Event]]:
    """All registered event types by CloudEvents ``type``, after importing every catalogue."""
    from shared.events import load_all

    load_all()
    return dict(sorted(_REGISTRY.items()))


def model_for(ce_type: str) -> type[Event] | None:
    return _REGISTRY.get(ce_type)


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcaster(name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register how a ``name`` payload of ``from_version`` becomes one of the next version,
    so a consumer that handles only the newer version still applies older events (stored
    in topics kept forever, or sent by a producer not yet upgraded)."""

    def register(fn: Upcaster) -> Upcaster:
        _UPCASTERS[(name, from_version)] = fn
        return fn

    return register


@cache
def actor_fields(model: type[Event]) -> tuple[str, ...]:
    """The fields of ``model`` declared :data:`Actor`."""
    return tuple(
        name
        for name, info in model.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get(ACTOR_MARK)
    )


def split_type(ce_type: str) -> tuple[str, int] | None:
    """``ila.ledger.CreditsGranted.v2`` -> (``ledger.CreditsGranted``, 2)."""
    if not ce_type.startswith(TYPE_PREFIX):
        return None
    name, _, version = ce_type.removeprefix(TYPE_PREFIX).rpartition(".v")
    return (name, int(version)) if name and version.isdigit() else None


def _upcast_steps(ce_type: str) -> list[tuple[tuple[str, int], str]]:
    """The registered upcasters from ``ce_type`` on, each with the type it leads to."""
    parsed = split_type(ce_type)
    if parsed is None:
        return []
    name, version = parsed
    steps = []
    while (name, version) in _UPCASTERS:
        steps.append(((name, version), f"{TYPE_PREFIX}{name}.v{version + 1}"))
        version += 1
    return steps


def upcasts(ce_type: str, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each newer form of an event the registered upcasters lead to, oldest first."""
    forms = []
    for step, newer_type in _upcast_steps(ce_type):
        data = _UPCASTERS[step](dict(data))
        forms.append((newer_type, data))
    return forms


def newer_types(ce_type: str) -> list[str]:
    """The types of the newer forms :func:`upcasts` leads ``ce_type`` to, oldest first
    (without converting any data)."""
    return [newer_type for _, newer_type in _upcast_steps(ce_type)]


def newest_form(ce_type: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The newest registered form of an event: itself when no upcaster leads further
    (the stored or sent form is never changed; only what is read from it)."""
    for newer_type, newer_data in reversed(upcasts(ce_type, data)):
        if newer_type in _REGISTRY:
            return newer_type, newer_data
    return ce_type, data


def typed_payload(ce_type: str, data: dict[str, Any]) -> Event:
    """The typed payload of an event of any version an upcaster leads from; raises
    ``UnknownEventType`` for a type nobody registered."""
    newest, form = newest_form(ce_type, data)
    model = model_for(newest)
    if model is None:
        raise UnknownEventType(ce_type)
    return model.model_validate(form)


class Envelope(BaseModel):
    """CloudEvents 1.0 attributes plus the ILA extensions, with the payload as ``data``."""

    model_config = ConfigDict(extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    source: str
    type: str
    subject: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: Literal["application/json"] = "application/json"
    correlationid: uuid.UUID
    causationid: uuid.UUID | None = None
    actor: str | None = None
    schemaversion: int = 1
    data: dict[str, Any]

    @classmethod
    def wrap(
        cls,
        payload: Event,
        *,
        source: str,
        correlation_id: uuid.UUID | None = None,
        causation_id: uuid.UUID | None = None,
        actor: str | None = None,
        event_id: uuid.UUID | None = None,
        time: datetime | None = None,
    ) -> Envelope:
        eid = event_id or uuid.uuid4()
        return cls(
            id=eid,
            source=source,
            type=payload.cloudevent_type(),
            subject=payload.aggregate_id(),
            time=time or datetime.now(UTC),
            correlationid=correlation_id or eid,
            causationid=causation_id,
            actor=actor,
            schemaversion=payload.schema_version,
            data=payload.model_dump(mode="json"),
        )

    def payload(self) -> Event:
        """The typed payload, upcast to its newest form; raises ``UnknownEventType`` for a
        type nobody registered."""
        return typed_payload(self.type, self.data)

    def to_bytes(self) -> bytes:
        """The envelope as canonical JSON: compact, keys sorted, UTF-8, text unescaped.

        Written by orjson, about three times faster than the standard library; an integer
        beyond 64 bits, which orjson refuses, falls back to the standard library's identical
        form (:func:`shared.canonical.canonical_json`; no event model has a float field).
        """
        return canonical_json(self.model_dump(mode="json"), plain=True)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        return cls.model_validate_json(raw)


class UnknownEventType(Exception):
    def __init__(self, ce_type: str) -> None:
        super().__init__(f"unknown event type {ce_type!r}")
        self.ce_type = ce_type
