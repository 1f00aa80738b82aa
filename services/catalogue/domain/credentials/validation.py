"""The credential of a validation of prior learning, before signing (pure), in both forms
the catalogue issues.

- Open Badges 3: an ``OpenBadgeCredential`` whose achievement has the extension type
  ``ext:RecognitionOfPriorLearning`` (Open Badges 3 names no such type; extensions start
  with ``ext:``); the validation's elements are under ``credentialSubject.validation`` with
  the micro-credential's names where they mean the same (``learningOutcomes``, ``level``,
  ``awardingBody``, ...) and ``assessment`` (method, date, assessor's body).
- European Learning Model (EDC profile): a ``LearningAchievement`` specified by the
  validated learning outcomes and the EQF level, derived from the ``LearningAssessment``
  that validated them (its method, date and the assessor's body, ``assessedBy``).

The learner is the pseudonymous account id; the course gives the title, the field, the
language and the awarding bodies.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from services.catalogue.domain import isced
from services.catalogue.domain.credentials import document, elm
from services.catalogue.domain.credentials.signing import iso

ACHIEVEMENT_TYPE = "ext:RecognitionOfPriorLearning"
METHODS = {
    "portfolio": "Portfolio of evidence",
    "interview": "Interview or dialogue",
    "observation": "Observation at work",
    "simulation": "Simulation",
    "test": "Test or examination",
    "declarative": "Declarative methods",
    "mixed": "Several methods",
}


@dataclass(frozen=True)
class Validation:
    validation_id: uuid.UUID
    enrolment_id: uuid.UUID
    account_id: uuid.UUID
    learning_outcomes: tuple[str, ...]
    eqf_level: int
    method: str
    assessed_on: date
    assessor_body: str


def elements(v: Validation, content: dict[str, Any], issued_at: datetime) -> dict[str, Any]:
    """The validation's elements (shared by both forms)."""
    d = content["descriptor"]
    return {
        "learnerIdentification": f"urn:uuid:{v.account_id}",
        "title": d["title"],
        "issuerCountryRegion": {
            "countries": list(d["issuer_countries"]),
            "regions": list(d.get("issuer_regions") or []),
        },
        "awardingBody": list(d["awarding_bodies"]),
        "dateOfIssuing": iso(issued_at),
        "learningOutcomes": list(v.learning_outcomes),
        "level": {"eqf": v.eqf_level},
        "typeOfAssessment": METHODS.get(v.method, v.method),
        "assessment": {
            "method": v.method,
            "date": v.assessed_on.isoformat(),
            "assessorBody": v.assessor_body,
        },
        "validationId": str(v.validation_id),
        "enrolmentId": str(v.enrolment_id),
    }


def build_ob3(facts: document.Facts, v: Validation) -> dict[str, Any]:
    """The unsigned Open Badges 3 credential of the validation."""
    content = facts.content
    e = elements(v, content, facts.issued_at)
    achievement = {
        **document.ob3_achievement(
            f"urn:ila:validation:{v.validation_id}",
            ACHIEVEMENT_TYPE,
            e["title"],
            v.learning_outcomes,
            content,
            facts.provider_name,
        ),
        "tag": ["validation of prior learning", "recognition of prior learning"],
    }
    return {
        **document.ob3_envelope(facts, e["title"]),
        "credentialSubject": {
            "id": e["learnerIdentification"],
            "type": ["AchievementSubject"],
            "achievement": achievement,
            "validation": e,
        },
        "credentialStatus": dict(facts.status),
    }


def build_elm(facts: document.Facts, v: Validation) -> dict[str, Any]:
    """The unsigned European Learning Model credential of the validation: the training
    form's shape (:func:`.elm.build`) with the validation's claim."""
    credential_id, issued_at, content = facts.credential_id, facts.issued_at, facts.content
    lang = content["language"]
    e = elements(v, content, issued_at)
    base = f"urn:ila:validation:{v.validation_id}"
    field = isced.lookup(content["isced_field"])
    language = [
        elm._concept(
            f"http://publications.europa.eu/resource/authority/language/{lang.upper()}",
            "http://publications.europa.eu/resource/authority/language",
        )
    ]
    spec = {
        "id": f"{base}:specification",
        "type": "LearningAchievementSpecification",
        "title": elm._text(e["title"], lang),
        "description": elm._text(content["description"], lang),
        "learningOutcome": [
            {"id": f"{base}:outcome:{n}", "type": "LearningOutcome", "title": elm._text(o, lang)}
            for n, o in enumerate(v.learning_outcomes, start=1)
        ],
        "eqfLevel": elm._concept(f"{elm.SNB}/eqf/{v.eqf_level}", f"{elm.SNB}/eqf/25831c2"),
        "ISCEDFCode": [
            elm._concept(
                f"{elm.SNB}/isced-f/{content['isced_field']}",
                f"{elm.SNB}/isced-f/25831c2",
                field.name if field else None,
            )
        ],
        "language": language,
    }
    assessment = {
        "id": f"{base}:assessment",
        "type": "LearningAssessment",
        "title": elm._text("Validation of prior learning", "en"),
        "assessedBy": [
            {
                "id": f"{base}:assessor",
                "type": "Organisation",
                "legalName": elm._text(v.assessor_body, lang),
            }
        ],
        "dateIssued": f"{v.assessed_on.isoformat()}T00:00:00Z",
        "grade": {"id": f"{base}:grade", "type": "Note", "noteLiteral": {"en": "validated"}},
        "specifiedBy": {
            "id": f"{base}:assessment-specification",
            "type": "LearningAssessmentSpecification",
            "title": elm._text(METHODS.get(v.method, v.method), "en"),
            "dcType": elm._concept(
                f"urn:ila:validation-method:{v.method}",
                "urn:ila:validation-method",
                METHODS.get(v.method, v.method),
            ),
        },
    }
    achievement = {
        "id": f"urn:ila:credential:{credential_id}:achievement",
        "type": "LearningAchievement",
        "title": elm._text(e["title"], lang),
        "awardedBy": {
            "id": f"urn:ila:credential:{credential_id}:awarding",
            "type": "AwardingProcess",
            "awardingBody": [
                {
                    "id": f"{base}:awarding-body:{n}",
                    "type": "Organisation",
                    "legalName": elm._text(name, lang),
                }
                for n, name in enumerate(e["awardingBody"], start=1)
            ],
            "awardingDate": iso(issued_at),
        },
        "specifiedBy": spec,
        "wasDerivedFrom": [assessment],
        "additionalNote": [
            {
                "id": f"urn:ila:credential:{credential_id}:provider",
                "type": "Note",
                "noteLiteral": elm._text(facts.provider_name, lang),
                "subject": elm._concept(
                    f"{elm.SNB}/summary-indicator/provider", f"{elm.SNB}/summary-indicator/25831c2"
                ),
            },
            {
                "id": f"urn:ila:credential:{credential_id}:validation",
                "type": "Note",
                "noteLiteral": {"en": "Validation of prior learning (non-formal and informal)"},
            },
        ],
    }
    countries = e["issuerCountryRegion"]["countries"]
    return {
        "@context": list(elm.CONTEXTS),
        "id": f"urn:uuid:{credential_id}",
        "type": ["VerifiableCredential", "EuropeanDigitalCredential"],
        "credentialProfiles": [
            elm._concept(elm.GENERIC_PROFILE, f"{elm.SNB}/credential/25831c2", "Generic")
        ],
        "credentialSchema": [{"id": elm.EDC_SHAPES, "type": "ShaclValidator2017"}],
        "issuer": elm.issuer_organisation(facts.issuer, countries),
        "validFrom": iso(issued_at),
        "issued": iso(issued_at),
        "credentialSubject": {
            "id": e["learnerIdentification"],
            "type": "Person",
            "hasClaim": [achievement],
        },
        "credentialStatus": dict(facts.status),
        "displayParameter": {
            "id": f"urn:ila:credential:{credential_id}:display",
            "type": "DisplayParameter",
            "title": elm._text(e["title"], lang),
            "language": language,
            "primaryLanguage": language[0],
        },
    }
