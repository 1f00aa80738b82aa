"""The credential in the European Learning Model (ELM 3), EDC profile (pure).

The same certified completion as the Open Badges 3 document (:mod:`.document`), as a
``EuropeanDigitalCredential`` of the Europass Digital Credentials application profile
(context ``http://data.europa.eu/snb/model/context/edc-ap``): the learner (a ``Person``
named by the pseudonymous account id) has one claim, a ``LearningAchievement`` awarded by
the awarding bodies and specified by a ``LearningAchievementSpecification`` with the
learning outcomes, the EQF level, the ISCED-F field, the ECTS credit points and the
volume of learning, each controlled value a ``Concept`` of the EU vocabularies
(``http://data.europa.eu/snb/...``). It carries the same ``credentialStatus`` as its Open
Badges twin (one bit revokes both) and is signed by the same key with the same Data
Integrity proof.
"""

from __future__ import annotations

from typing import Any

import pycountry

from services.catalogue.domain import isced
from services.catalogue.domain.credentials.document import (
    Completion,
    Facts,
    Issuer,
    descriptor_elements,
)
from services.catalogue.domain.credentials.signing import iso

CONTEXTS = [
    "https://www.w3.org/ns/credentials/v2",
    "http://data.europa.eu/snb/model/context/edc-ap",
]
SNB = "http://data.europa.eu/snb"
GENERIC_PROFILE = f"{SNB}/credential/e34929035b"
EDC_SHAPES = f"{SNB}/model/ap/edc-generic-full"
MODES = {"in_person": "inPerson", "online": "online", "blended": "blendedLearning"}


def _concept(uri: str, scheme: str, label: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {
        "id": uri,
        "type": "Concept",
        "inScheme": {"id": scheme, "type": "ConceptScheme"},
    }
    if label:
        concept["prefLabel"] = {"en": label}
    return concept


def _alpha3(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code)
    return country.alpha_3 if country else code


def _text(value: str, language: str) -> dict[str, str]:
    return {language: value}


def issuer_organisation(issuer: Issuer, countries: list[str]) -> dict[str, Any]:
    """The issuer as an ELM ``Organisation``, located in the first of ``countries``."""
    return {
        "id": issuer.did,
        "type": "Organisation",
        "legalName": {"en": issuer.name},
        "location": [
            {
                "id": f"urn:ila:issuer:location:{c}",
                "type": "Location",
                "address": [
                    {
                        "id": f"urn:ila:issuer:address:{c}",
                        "type": "Address",
                        "countryCode": _concept(
                            "http://publications.europa.eu/resource/authority/country/"
                            + _alpha3(c),
                            "http://publications.europa.eu/resource/authority/country",
                        ),
                    }
                ],
            }
            for c in countries[:1]
        ],
    }


def build(facts: Facts, completion: Completion) -> dict[str, Any]:
    """The unsigned ELM credential (its id: the Open Badges credential's, with ``:elm``)."""
    credential_id, issued_at, content = facts.credential_id, facts.issued_at, facts.content
    course_id, course_version = facts.course_id, facts.course_version
    lang = content["language"]
    learner = f"urn:uuid:{completion.account_id}"
    elements = descriptor_elements(
        content, learner=learner, issued_at=issued_at, grade=completion.grade
    )
    field = isced.lookup(content["isced_field"])
    spec: dict[str, Any] = {
        "id": f"urn:ila:course:{course_id}:v{course_version}:specification",
        "type": "LearningAchievementSpecification",
        "title": _text(elements["title"], lang),
        "description": _text(content["description"], lang),
        "learningOutcome": [
            {
                "id": f"urn:ila:course:{course_id}:v{course_version}:outcome:{n}",
                "type": "LearningOutcome",
                "title": _text(outcome, lang),
            }
            for n, outcome in enumerate(content["learning_outcomes"], start=1)
        ],
        "eqfLevel": _concept(f"{SNB}/eqf/{content['eqf_level']}", f"{SNB}/eqf/25831c2"),
        "ISCEDFCode": [
            _concept(
                f"{SNB}/isced-f/{content['isced_field']}",
                f"{SNB}/isced-f/25831c2",
                field.name if field else None,
            )
        ],
        "volumeOfLearning": f"PT{content['workload_hours']}H",
        "language": [
            _concept(
                f"http://publications.europa.eu/resource/authority/language/{lang.upper()}",
                "http://publications.europa.eu/resource/authority/language",
            )
        ],
        "mode": [
            _concept(
                f"{SNB}/learning-setting/{MODES[content['mode']]}",
                f"{SNB}/learning-setting/25831c2",
            )
        ],
    }
    if content.get("ects") is not None:
        spec["creditPoint"] = [
            {
                "id": f"urn:ila:course:{course_id}:v{course_version}:ects",
                "type": "CreditPoint",
                "framework": _concept(
                    f"{SNB}/education-credit/6fcec5c5af", f"{SNB}/education-credit/25831c2", "ECTS"
                ),
                "point": str(content["ects"]),
            }
        ]
    bodies = [
        {
            "id": f"urn:ila:awarding-body:{course_id}:{n}",
            "type": "Organisation",
            "legalName": _text(name, lang),
        }
        for n, name in enumerate(elements["awardingBody"], start=1)
    ]
    achievement: dict[str, Any] = {
        "id": f"urn:ila:credential:{credential_id}:achievement",
        "type": "LearningAchievement",
        "title": _text(elements["title"], lang),
        "awardedBy": {
            "id": f"urn:ila:credential:{credential_id}:awarding",
            "type": "AwardingProcess",
            "awardingBody": bodies,
            "awardingDate": iso(issued_at),
        },
        "specifiedBy": spec,
        "additionalNote": [
            {
                "id": f"urn:ila:credential:{credential_id}:provider",
                "type": "Note",
                "noteLiteral": _text(facts.provider_name, lang),
                "subject": _concept(
                    f"{SNB}/summary-indicator/provider", f"{SNB}/summary-indicator/25831c2"
                ),
            }
        ],
    }
    if completion.grade is not None:
        achievement["wasDerivedFrom"] = [
            {
                "id": f"urn:ila:credential:{credential_id}:assessment",
                "type": "LearningAssessment",
                "title": _text(elements["typeOfAssessment"], lang),
                "grade": {
                    "id": f"urn:ila:credential:{credential_id}:grade",
                    "type": "Note",
                    "noteLiteral": _text(completion.grade, lang),
                },
            }
        ]
    countries = elements["issuerCountryRegion"]["countries"]
    return {
        "@context": list(CONTEXTS),
        "id": f"urn:uuid:{credential_id}",
        "type": ["VerifiableCredential", "EuropeanDigitalCredential"],
        "credentialProfiles": [_concept(GENERIC_PROFILE, f"{SNB}/credential/25831c2", "Generic")],
        "credentialSchema": [{"id": EDC_SHAPES, "type": "ShaclValidator2017"}],
        "issuer": issuer_organisation(facts.issuer, countries),
        "validFrom": iso(issued_at),
        "issued": iso(issued_at),
        "credentialSubject": {"id": learner, "type": "Person", "hasClaim": [achievement]},
        "credentialStatus": dict(facts.status),
        "displayParameter": {
            "id": f"urn:ila:credential:{credential_id}:display",
            "type": "DisplayParameter",
            "title": _text(elements["title"], lang),
            "language": spec["language"],
            "primaryLanguage": spec["language"][0],
        },
    }
