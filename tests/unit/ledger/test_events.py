"""The ledger's event schemas: money is a strict int, time is aware UTC, splits add up."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from shared.events.base import Envelope, registry, typed_payload
from shared.events.ledger import (
    CreditsGranted,
    CreditsReserved,
    Earmark,
    EntryReversed,
    LotAmount,
    ReservationCaptured,
)
from tests.unit.support.ledger import ACCOUNT, COURSE, T0, granted, reserved, uid

LEDGER_EVENTS = {
    "WalletOpened",
    "ProfileNoted",
    "CreditsGranted",
    "CreditsReserved",
    "ReservationRejected",
    "ReservationCaptured",
    "ReservationReleased",
    "LotExpired",
    "EntryReversed",
    "WalletSuspended",
    "WalletReinstated",
    "WalletClosed",
}


def test_every_ledger_event_is_registered_on_the_ledger_topic() -> None:
    types = registry()
    # version 2: the profile carries the need tier; status changes, grants and reversals a
    # reason code
    v2 = {
        "ProfileNoted",
        "WalletSuspended",
        "WalletReinstated",
        "WalletClosed",
        "CreditsGranted",
        "EntryReversed",
    }
    for name in LEDGER_EVENTS:
        model = types[f"ila.ledger.{name}.v{2 if name in v2 else 1}"]
        assert model.topic == "ledger"
        assert model.event_name == f"ledger.{name}"


def test_an_event_travels_in_its_envelope_and_comes_back_equal() -> None:
    event = reserved("r1", [("a", 700), ("b", 300)], requested=2_000, up_to=True)
    envelope = Envelope.wrap(event, source="ledger")
    assert envelope.subject == str(ACCOUNT)
    assert Envelope.from_bytes(envelope.to_bytes()).payload() == event


@pytest.mark.parametrize("actor", [None, "system", "learner:p-café", "agent:p-日本"])
@pytest.mark.parametrize("extra", [0, 2**64, -(2**70)])
def test_an_envelope_is_compact_sorted_utf8_json_for_any_actor_and_any_size_of_integer(
    actor: str | None, extra: int
) -> None:
    envelope = Envelope.wrap(granted("g1", 500), source="ledger", actor=actor)
    envelope = envelope.model_copy(update={"data": {**envelope.data, "zz_extra": extra}})
    document = envelope.model_dump(mode="json")
    expected = json.dumps(document, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    assert envelope.to_bytes() == expected.encode()
    assert json.loads(envelope.to_bytes()) == document


@pytest.mark.parametrize("amount", [100.0, "100", True, 0, -5])
def test_money_is_a_positive_int_and_nothing_else(amount: object) -> None:
    with pytest.raises(ValidationError):
        CreditsGranted(
            account_id=ACCOUNT,
            occurred_at=T0,
            lot_id=uid("a"),
            amount=amount,
            funder_id="state",
            reason_code="top_up",
            kind="top_up",
        )


def test_money_from_json_refuses_a_float() -> None:
    data = granted("a", 100).model_dump(mode="json")
    raw = granted("a", 100).model_dump_json().replace('"amount":100', '"amount":100.0')
    assert '"amount":100.0' in raw
    with pytest.raises(ValidationError):
        CreditsGranted.model_validate_json(raw)
    assert CreditsGranted.model_validate(data) == granted("a", 100)


def test_times_must_be_aware_and_are_kept_in_utc() -> None:
    with pytest.raises(ValidationError):
        granted("a", 100, at=T0.replace(tzinfo=None))
    paris = T0.astimezone(timezone(timedelta(hours=2)))
    event = granted("a", 100, at=paris, expires_at=paris + timedelta(days=1))
    assert event.occurred_at == T0 and event.occurred_at.tzinfo is not None
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert isinstance(event.expires_at, datetime)
    assert event.expires_at.utcoffset() == timedelta(0)


def test_a_statutory_grant_names_its_year() -> None:
    with pytest.raises(ValidationError):
        granted("a", 100, kind="statutory", year=None)


def test_an_earmark_restricts_something() -> None:
    with pytest.raises(ValidationError):
        Earmark()
    assert Earmark(isced_fields=("06",)).isced_fields == ("06",)
    with pytest.raises(ValidationError):
        Earmark(isced_fields=("computing",))


def test_an_earmark_admits_a_course_that_meets_every_criterion_it_sets() -> None:
    course = COURSE  # ISCED-F 0613, EQF 5, tagged "digital"
    assert Earmark(eqf_levels=(5,), tags=("digital", "green")).admits(course)
    assert Earmark(isced_fields=("06",)).admits(course)  # ISCED-F is hierarchical
    assert Earmark(course_ids=(course.course_id,)).admits(course)
    assert not Earmark(eqf_levels=(4,)).admits(course)
    assert not Earmark(tags=("green",)).admits(course)
    assert not Earmark(isced_fields=("07",)).admits(course)
    assert not Earmark(eqf_levels=(5,), course_ids=(uid("other"),)).admits(course)
    assert not Earmark(isced_fields=("06",)).admits(course.model_copy(update={"isced_field": None}))


def test_a_reservation_split_must_add_up() -> None:
    with pytest.raises(ValidationError):
        CreditsReserved(
            account_id=ACCOUNT,
            occurred_at=T0,
            reservation_id=uid("r"),
            enrolment_id=uid("e"),
            course=COURSE,
            requested=1_000,
            amount=1_000,
            up_to=False,
            allocations=(LotAmount(lot_id=uid("a"), amount=999),),
            expires_at=T0,
        )


def test_a_lot_appears_once_in_a_split() -> None:
    twice = (LotAmount(lot_id=uid("a"), amount=1), LotAmount(lot_id=uid("a"), amount=1))
    with pytest.raises(ValidationError):
        ReservationCaptured(
            account_id=ACCOUNT,
            occurred_at=T0,
            reservation_id=uid("r"),
            enrolment_id=uid("e"),
            amount=2,
            released=0,
            allocations=twice,
        )


def test_a_reversal_names_the_kind_of_entry_it_compensates() -> None:
    common = {
        "account_id": ACCOUNT,
        "occurred_at": T0,
        "amount": 5,
        "allocations": (LotAmount(lot_id=uid("a"), amount=5),),
        "reason_code": "wrong_amount",
        "actor": "admin",
        "target_version": 2,
    }
    with pytest.raises(ValidationError):
        EntryReversed(target_event="ledger.CreditsGranted", reservation_id=uid("r"), **common)
    with pytest.raises(ValidationError):
        EntryReversed(target_event="ledger.ReservationCaptured", lot_id=uid("a"), **common)
    with pytest.raises(ValidationError):
        EntryReversed(
            target_event="ledger.CreditsGranted",
            lot_id=uid("b"),  # a grant's reversal takes from that grant's lot only
            **common,
        )
    assert EntryReversed(target_event="ledger.CreditsGranted", lot_id=uid("a"), **common)


def test_no_float_in_any_ledger_event_schema() -> None:
    def numbers(schema: object) -> list[str]:
        found: list[str] = []
        if isinstance(schema, dict):
            if schema.get("type") == "number":
                found.append(str(schema))
            for value in schema.values():
                found += numbers(value)
        elif isinstance(schema, list):
            for value in schema:
                found += numbers(value)
        return found

    for ce_type, model in registry().items():
        if model.topic == "ledger":
            assert numbers(model.model_json_schema()) == [], ce_type


def test_version_1_grants_and_reversals_read_with_a_reason_code_and_no_free_text() -> None:
    grant = {
        "account_id": str(ACCOUNT),
        "occurred_at": T0.isoformat(),
        "lot_id": str(uid("a")),
        "amount": 500,
        "funder_id": "region",
        "kind": "top_up",
    }
    top_up = typed_payload("ila.ledger.CreditsGranted.v1", {**grant, "reason": "Ana's refund"})
    assert isinstance(top_up, CreditsGranted) and top_up.reason_code == "other"
    statutory = typed_payload(
        "ila.ledger.CreditsGranted.v1",
        {**grant, "kind": "statutory", "year": 2025, "reason": "statutory entitlement 2025"},
    )
    assert isinstance(statutory, CreditsGranted) and statutory.reason_code == "statutory"
    reversed_ = typed_payload(
        "ila.ledger.EntryReversed.v1",
        {
            "account_id": str(ACCOUNT),
            "occurred_at": T0.isoformat(),
            "target_event": "ledger.CreditsGranted",
            "target_version": 2,
            "lot_id": str(uid("a")),
            "amount": 500,
            "allocations": [{"lot_id": str(uid("a")), "amount": 500}],
            "reason": "Ana asked twice",
            "actor": "admin:p-0",
        },
    )
    assert isinstance(reversed_, EntryReversed) and reversed_.reason_code == "other"
    assert "Ana" not in top_up.model_dump_json() + reversed_.model_dump_json()


def test_a_capture_stored_before_it_named_its_provider_still_reads() -> None:
    # captures (and payments' capture requests) recorded before they carried the provider
    # read as "provider not said", the stored form unchanged
    captured = ReservationCaptured(
        account_id=ACCOUNT,
        occurred_at=T0,
        reservation_id=uuid.uuid4(),
        enrolment_id=uuid.uuid4(),
        amount=100,
        released=0,
        allocations=(LotAmount(lot_id=uuid.uuid4(), amount=100),),
    )
    stored = captured.model_dump(mode="json")
    stored.pop("provider_id")
    assert typed_payload("ila.ledger.ReservationCaptured.v1", stored) == captured
    assert captured.provider_id is None
    named = captured.model_copy(update={"provider_id": "p1"})
    assert (
        typed_payload("ila.ledger.ReservationCaptured.v1", named.model_dump(mode="json")) == named
    )
    request = {
        "enrolment_id": str(uuid.uuid4()),
        "account_id": str(ACCOUNT),
        "reservation_id": str(uuid.uuid4()),
        "claim_id": str(uuid.uuid4()),
        "amount": 5,
    }
    assert typed_payload("ila.payments.CaptureRequested.v1", request).provider_id is None  # type: ignore[attr-defined]
