"""What a presented credential says, read for a person (pure).

The document comes from anyone: every element is looked up where the catalogue's Open
Badges 3.0 credential (:mod:`.document`) puts it, and whatever is missing or of the wrong
type is left out, never guessed and never an error. Text is returned as plain strings
(the page escapes it); lists are cut to a sane length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MAX_ITEMS = 50
MAX_CHARS = 2_000


@dataclass(frozen=True)
class Summary:
    """The standard elements of a credential, as far as the document carries them."""

    title: str | None = None
    issuer_name: str | None = None
    issuer_id: str | None = None
    learner: str | None = None
    provider: str | None = None
    awarding_bodies: list[str] = field(default_factory=list)
    achievement: str | None = None
    description: str | None = None
    eqf_level: int | None = None
    isced_code: str | None = None
    isced_name: str | None = None
    workload_hours: float | None = None
    ects: float | None = None
    learning_outcomes: list[str] = field(default_factory=list)
    issued_at: datetime | None = None
    completed_at: datetime | None = None
    grade: str | None = None
    assessment: str | None = None
    participation: str | None = None
    quality_assurance: str | None = None
    countries: list[str] = field(default_factory=list)
    language: str | None = None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()[:MAX_CHARS]
    return None


def _texts(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [t for t in (_text(v) for v in value[:MAX_ITEMS]) if t]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 <= value < 10**6 else None


def _moment(value: Any) -> datetime | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _isced(achievement: dict[str, Any]) -> tuple[str | None, str | None]:
    alignments = achievement.get("alignment")
    for alignment in alignments[:MAX_ITEMS] if isinstance(alignments, list) else []:
        a = _dict(alignment)
        if a.get("targetFramework") == "ISCED-F 2013":
            return _text(a.get("targetCode")), _text(a.get("targetName"))
    return None, _text(achievement.get("fieldOfStudy"))


def _lang_text(value: Any) -> str | None:
    """The first text of an ELM language map (``{"en": "..."}``)."""
    values = list(value.values())[:1] if isinstance(value, dict) else []
    return _text(values[0]) if values else None


def _concept_tail(value: Any) -> str | None:
    uri = _text(_dict(value).get("id"))
    return uri.rsplit("/", 1)[-1] if uri else None


def summarise_elm(document: dict[str, Any]) -> Summary:
    """The elements of a European Learning Model credential (EDC profile)."""
    claims = _dict(document.get("credentialSubject")).get("hasClaim")
    claim = _dict(claims[0]) if isinstance(claims, list) and claims else {}
    spec = _dict(claim.get("specifiedBy"))
    awarded = _dict(claim.get("awardedBy"))
    bodies = awarded.get("awardingBody")
    outcomes = spec.get("learningOutcome")
    isced_codes = spec.get("ISCEDFCode")
    isced_code = (
        _concept_tail(isced_codes[0]) if isinstance(isced_codes, list) and isced_codes else None
    )
    eqf = _concept_tail(spec.get("eqfLevel"))
    credits = spec.get("creditPoint")
    ects = _dict(credits[0]).get("point") if isinstance(credits, list) and credits else None
    hours = _text(spec.get("volumeOfLearning"))
    issuer = _dict(document.get("issuer"))
    return Summary(
        title=_lang_text(claim.get("title")),
        issuer_name=_lang_text(issuer.get("legalName")),
        issuer_id=_text(issuer.get("id")),
        learner=_text(_dict(document.get("credentialSubject")).get("id")),
        awarding_bodies=[
            t for t in (_lang_text(_dict(b).get("legalName")) for b in bodies[:MAX_ITEMS]) if t
        ]
        if isinstance(bodies, list)
        else [],
        description=_lang_text(spec.get("description")),
        eqf_level=int(eqf) if eqf and eqf.isdigit() and 1 <= int(eqf) <= 8 else None,
        isced_code=isced_code if isced_code and isced_code.isdigit() else None,
        workload_hours=_number(int(hours[2:-1]))
        if hours and hours.startswith("PT") and hours.endswith("H") and hours[2:-1].isdigit()
        else None,
        ects=_number(float(ects))
        if isinstance(ects, str) and ects.replace(".", "", 1).isdigit()
        else None,
        learning_outcomes=[
            t for t in (_lang_text(_dict(o).get("title")) for o in outcomes[:MAX_ITEMS]) if t
        ]
        if isinstance(outcomes, list)
        else [],
        issued_at=_moment(document.get("validFrom")),
    )


def summarise(document: dict[str, Any]) -> Summary:
    """The elements a reader looks for, from a credential as the catalogue issues it (Open
    Badges 3, or the European Learning Model)."""
    if "hasClaim" in _dict(document.get("credentialSubject")):
        return summarise_elm(document)
    subject = _dict(document.get("credentialSubject"))
    achievement = _dict(subject.get("achievement"))
    # a validation of prior learning carries the same elements under ``validation``
    mc = _dict(subject.get("microCredential") or subject.get("validation"))
    issuer = document.get("issuer")
    workload = _dict(mc.get("notionalWorkload"))
    level = _dict(mc.get("level")).get("eqf")
    isced_code, isced_name = _isced(achievement)
    results = subject.get("result")
    grade = _text(mc.get("grade"))
    if grade is None and isinstance(results, list) and results:
        grade = _text(_dict(results[0]).get("value"))
    title = _text(mc.get("title")) or _text(achievement.get("name")) or _text(document.get("name"))
    return Summary(
        title=title,
        issuer_name=_text(_dict(issuer).get("name")),
        issuer_id=_text(_dict(issuer).get("id")) or _text(issuer),
        learner=_text(subject.get("id")) or _text(mc.get("learnerIdentification")),
        provider=_text(_dict(achievement.get("creator")).get("name")),
        awarding_bodies=_texts(mc.get("awardingBody")),
        achievement=_text(achievement.get("name")),
        description=_text(achievement.get("description")),
        eqf_level=level if isinstance(level, int) and 1 <= level <= 8 else None,
        isced_code=isced_code,
        isced_name=isced_name,
        workload_hours=_number(workload.get("hours")),
        ects=_number(workload.get("ects")),
        learning_outcomes=_texts(mc.get("learningOutcomes")),
        issued_at=_moment(mc.get("dateOfIssuing")) or _moment(document.get("validFrom")),
        completed_at=_moment(_dict(subject.get("completion")).get("completedAt")),
        grade=grade,
        assessment=_text(mc.get("typeOfAssessment")),
        participation=_text(mc.get("formOfParticipation")),
        quality_assurance=_text(mc.get("typeOfQualityAssurance")),
        countries=_texts(_dict(mc.get("issuerCountryRegion")).get("countries")),
        language=_text(achievement.get("inLanguage")),
    )


# what the verification's checks mean to a reader, most serious first
UNREADABLE = "unreadable"  # not a credential at all: no proof, or not of the form we sign
NOT_OURS = "not_ours"  # signed by another key, or unknown to this issuer
TAMPERED = "tampered"  # our key, but the content no longer matches the signature
KEY_REVOKED = "key_revoked"  # signed by a key revoked from a date before it signed
REVOKED = "revoked"
VALID = "valid"


def verdict(result: dict[str, Any]) -> str:
    """One word for the outcome of :func:`services.catalogue.handlers.credentials.verify`."""
    checks: dict[str, str] = result.get("checks", {})
    if checks.get("format") != "ok":
        return UNREADABLE
    if checks.get("issuer") == "unknown":
        return NOT_OURS
    if checks.get("signature") != "ok" or checks.get("issuer") != "ok":
        return TAMPERED
    if checks.get("key") == "revoked":
        return KEY_REVOKED
    if checks.get("revocation") == "revoked":
        return REVOKED
    if checks.get("revocation") != "ok":
        return NOT_OURS  # signed with our key, yet this issuer has no record of it
    return VALID if result.get("valid") else TAMPERED
