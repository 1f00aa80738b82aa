"""The micro-credential document, before signing (pure).

Shaped as a W3C Verifiable Credential 2.0 / Open Badges 3.0 ``OpenBadgeCredential`` whose
achievement has type ``MicroCredential``, and carrying every element of the EU
micro-credential (Council Recommendation 2022/C 243/02, Annex I) under
``credentialSubject.microCredential`` with the Recommendation's own names, so that a
reader who knows only the Recommendation finds them. The learner is identified by the
pseudonymous account id, never by name or national id.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.catalogue.domain import isced
from services.catalogue.domain.credentials.signing import iso

CONTEXTS = [
    "https://www.w3.org/ns/credentials/v2",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
]
MANDATORY_ELEMENTS = (
    "learnerIdentification",
    "title",
    "issuerCountryRegion",
    "awardingBody",
    "dateOfIssuing",
    "learningOutcomes",
    "notionalWorkload",
    "level",
    "typeOfAssessment",
    "formOfParticipation",
    "typeOfQualityAssurance",
)
OPTIONAL_ELEMENTS = (
    "prerequisites",
    "supervisionAndIdentityVerification",
    "grade",
    "integrationStackability",
    "furtherInformation",
)
PARTICIPATION = {"in_person": "onsite", "online": "online", "blended": "blended"}


@dataclass(frozen=True)
class Completion:
    enrolment_id: uuid.UUID
    account_id: uuid.UUID
    completed_at: datetime
    completion_rate: int
    grade: str | None


@dataclass(frozen=True)
class Issuer:
    did: str
    name: str


@dataclass(frozen=True)
class Facts:
    """What a credential states in both of its forms (Open Badges 3 and the European
    Learning Model): its id, who issues it and when, the course version it attests (with its
    content and its provider's name) and the status list entry that revokes both forms."""

    credential_id: uuid.UUID
    issuer: Issuer
    issued_at: datetime
    course_id: uuid.UUID
    course_version: int
    content: dict[str, Any]
    provider_name: str
    status: dict[str, Any]


def descriptor_elements(
    content: dict[str, Any], *, learner: str | None, issued_at: datetime | None, grade: str | None
) -> dict[str, Any]:
    """Every element of the EU micro-credential for a course version (learner, date of
    issuing and grade are known only when a credential is issued)."""
    d = content["descriptor"]
    workload: dict[str, Any] = {"hours": content["workload_hours"]}
    if content.get("ects") is not None:
        workload["ects"] = content["ects"]
    stack = d.get("stackability")
    return {
        "learnerIdentification": learner,
        "title": d["title"],
        "issuerCountryRegion": {
            "countries": list(d["issuer_countries"]),
            "regions": list(d.get("issuer_regions") or []),
        },
        "awardingBody": list(d["awarding_bodies"]),
        "dateOfIssuing": iso(issued_at) if issued_at else None,
        "learningOutcomes": list(content["learning_outcomes"]),
        "notionalWorkload": workload,
        "level": {"eqf": content["eqf_level"]},
        "typeOfAssessment": d["assessment_type"],
        "formOfParticipation": PARTICIPATION[content["mode"]],
        "typeOfQualityAssurance": d["quality_assurance"],
        "prerequisites": d.get("prerequisites"),
        "supervisionAndIdentityVerification": d.get("supervision"),
        "grade": grade,
        "integrationStackability": (
            {"integration": stack["integration"], "towards": stack.get("towards")}
            if stack
            else None
        ),
        "furtherInformation": d.get("further_information"),
    }


def ob3_envelope(facts: Facts, name: str) -> dict[str, Any]:
    """What every Open Badges 3 credential of the catalogue opens with (its subject follows)."""
    return {
        "@context": list(CONTEXTS),
        "id": f"urn:uuid:{facts.credential_id}",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": {"id": facts.issuer.did, "type": ["Profile"], "name": facts.issuer.name},
        "validFrom": iso(facts.issued_at),
        "name": name,
    }


def ob3_achievement(
    achievement_id: str,
    achievement_type: str,
    name: str,
    outcomes: Iterable[str],
    content: dict[str, Any],
    provider_name: str,
    *alignments: dict[str, Any],
) -> dict[str, Any]:
    """The Open Badges 3 achievement of a course's ``content``: its outcomes, language,
    provider and ISCED-F field, aligned to that field and then to ``alignments``."""
    field = isced.lookup(content["isced_field"])
    return {
        "id": achievement_id,
        "type": ["Achievement"],
        "achievementType": achievement_type,
        "name": name,
        "description": content["description"],
        "criteria": {"narrative": "; ".join(outcomes)},
        "inLanguage": content["language"],
        "creator": {"type": ["Profile"], "name": provider_name},
        "fieldOfStudy": field.name if field else content["isced_field"],
        "alignment": [
            {
                "type": ["Alignment"],
                "targetName": field.name if field else content["isced_field"],
                "targetUrl": isced.URI_BASE + content["isced_field"],
                "targetFramework": "ISCED-F 2013",
                "targetCode": content["isced_field"],
            },
            *alignments,
        ],
    }


def build(facts: Facts, completion: Completion) -> dict[str, Any]:
    """The unsigned credential for one certified completion of one course version."""
    content = facts.content
    learner = f"urn:uuid:{completion.account_id}"
    elements = descriptor_elements(
        content, learner=learner, issued_at=facts.issued_at, grade=completion.grade
    )
    achievement = ob3_achievement(
        f"urn:ila:course:{facts.course_id}:v{facts.course_version}",
        "MicroCredential",
        elements["title"],
        content["learning_outcomes"],
        content,
        facts.provider_name,
        *(
            {
                "type": ["Alignment"],
                "targetName": uri,
                "targetUrl": uri,
                "targetFramework": "ESCO",
            }
            for uri in content.get("esco_skills") or []
        ),
    )
    subject: dict[str, Any] = {
        "id": learner,
        "type": ["AchievementSubject"],
        "achievement": achievement,
        "microCredential": elements,
        "completion": {
            "enrolmentId": str(completion.enrolment_id),
            "completedAt": iso(completion.completed_at),
            "completionRate": completion.completion_rate,
        },
    }
    if completion.grade is not None:
        subject["result"] = [{"type": ["Result"], "value": completion.grade}]
    return {
        **ob3_envelope(facts, elements["title"]),
        "credentialSubject": subject,
        "credentialStatus": dict(facts.status),
    }
