"""Catalogue decisions travel as reason codes: version 1 events with free text still read,
as ``other`` (or the code the catalogue itself wrote), and no free text survives the read."""

from __future__ import annotations

import uuid

import pytest

from shared.events.base import typed_payload
from shared.events.catalogue import (
    CourseRejected,
    CourseWithdrawn,
    CredentialRevoked,
    ProviderAccredited,
    ProviderSuspended,
)

PROVIDER = str(uuid.uuid4())
COURSE = {"course_id": str(uuid.uuid4()), "version": 1, "provider_id": PROVIDER}
CREDENTIAL = {
    "credential_id": str(uuid.uuid4()),
    "account_id": str(uuid.uuid4()),
    "revoked_at": "2025-01-01T00:00:00+00:00",
}


@pytest.mark.parametrize(
    ("name", "data", "model", "code"),
    [
        (
            "ProviderAccredited",
            {"provider_id": PROVIDER, "qa_scheme": "q", "qa_valid_until": "2030-01-01"},
            ProviderAccredited,
            "other",
        ),
        ("ProviderSuspended", {"provider_id": PROVIDER}, ProviderSuspended, "other"),
        ("CourseRejected", COURSE, CourseRejected, "other"),
        ("CourseWithdrawn", COURSE, CourseWithdrawn, "other"),
        ("CredentialRevoked", CREDENTIAL, CredentialRevoked, "other"),
    ],
)
def test_a_version_1_free_text_reason_reads_as_other(
    name: str, data: dict[str, object], model: type, code: str
) -> None:
    event = typed_payload(f"ila.catalogue.{name}.v1", {**data, "reason": "Ana complained"})
    assert isinstance(event, model)
    assert event.reason_code == code  # type: ignore[attr-defined]
    assert "Ana" not in event.model_dump_json()  # type: ignore[attr-defined]


def test_codes_the_catalogue_wrote_itself_and_absent_reasons_are_kept() -> None:
    revoked = typed_payload(
        "ila.catalogue.CredentialRevoked.v1", {**CREDENTIAL, "reason": "capture_reversed"}
    )
    assert isinstance(revoked, CredentialRevoked) and revoked.reason_code == "capture_reversed"
    withdrawn = typed_payload("ila.catalogue.CourseWithdrawn.v1", {**COURSE, "reason": None})
    assert isinstance(withdrawn, CourseWithdrawn) and withdrawn.reason_code is None


def test_a_free_text_reason_is_refused_in_a_new_event() -> None:
    with pytest.raises(ValueError):
        ProviderSuspended(provider_id=PROVIDER, reason_code="he lied")  # type: ignore[arg-type]
