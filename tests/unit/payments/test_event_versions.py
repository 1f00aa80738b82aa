"""Payments events kept forever name reasons by code; older versions read as the new one."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from shared.events.base import typed_payload
from shared.events.payments import EnrolmentCancelled


def _cancelled(**extra: object) -> dict[str, object]:
    return {
        "enrolment_id": str(uuid.uuid4()),
        "account_id": str(uuid.uuid4()),
        "provider_id": "p1",
        "course_id": str(uuid.uuid4()),
        "session_id": str(uuid.uuid4()),
        "cancelled_by": "learner",
        "rule": "withdrawal",
        "provider_share": 0,
        **extra,
    }


def test_a_version_1_cancellation_reads_with_its_free_text_dropped() -> None:
    old = typed_payload("ila.payments.EnrolmentCancelled.v1", _cancelled(reason="my illness"))
    assert isinstance(old, EnrolmentCancelled) and old.reason_code == "other"
    assert "illness" not in old.model_dump_json()


def test_a_cancellation_takes_only_known_codes() -> None:
    assert EnrolmentCancelled.model_validate(_cancelled(reason_code="health")).reason_code == (
        "health"
    )
    with pytest.raises(ValidationError):
        EnrolmentCancelled.model_validate(_cancelled(reason_code="my illness"))
