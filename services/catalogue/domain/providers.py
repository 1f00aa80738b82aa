"""Providers and their quality assurance.

A provider is *eligible* (its courses listed, enrolments allowed) when an agency accredited
it, it is not suspended, and its quality assurance is still valid. The last part is
computed against ``today`` every time and never stored, so an expired QA makes the provider
ineligible by itself, with no job to run and no state to forget to update.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

from services.catalogue.domain.errors import conflict, unprocessable

ProviderStatus = Literal["registered", "accredited", "suspended"]


@dataclass(frozen=True)
class Provider:
    provider_id: str
    status: ProviderStatus
    qa_scheme: str
    qa_valid_until: date


def is_eligible(provider: Provider, today: date) -> bool:
    return provider.status == "accredited" and provider.qa_valid_until >= today


def ineligibility(provider: Provider, today: date) -> str | None:
    """Why the provider is not eligible today, or None."""
    if provider.status == "suspended":
        return "suspended"
    if provider.status == "registered":
        return "not_accredited"
    if provider.qa_valid_until < today:
        return "quality_assurance_expired"
    return None


def check_registration(qa_valid_until: date, today: date) -> None:
    if qa_valid_until < today:
        raise unprocessable(
            "quality_assurance_expired",
            f"the quality assurance expired on {qa_valid_until.isoformat()}",
            "quality_assurance.valid_until",
        )


def accredit(
    provider: Provider, today: date, qa_scheme: str | None, qa_valid_until: date | None
) -> Provider:
    """Accredit (or re-accredit after a suspension, or renew the QA of an accredited one)."""
    renewed = qa_valid_until is not None
    if provider.status == "accredited" and not renewed:
        raise conflict("already_accredited", "the provider is already accredited")
    scheme = qa_scheme or provider.qa_scheme
    valid_until = qa_valid_until or provider.qa_valid_until
    if valid_until < today:
        raise unprocessable(
            "quality_assurance_expired",
            f"the quality assurance expired on {valid_until.isoformat()}; "
            "give a renewed quality_assurance to accredit",
            "quality_assurance.valid_until",
        )
    return replace(provider, status="accredited", qa_scheme=scheme, qa_valid_until=valid_until)


def suspend(provider: Provider) -> Provider:
    if provider.status == "suspended":
        raise conflict("already_suspended", "the provider is already suspended")
    return replace(provider, status="suspended")
