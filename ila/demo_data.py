"""The people, providers and courses of the demonstration country, drawn from a seeded
random generator (the same seed and cohort give the same country).

The country is France cut down to five regions, each served by its regional office of the
public employment service (one agency each). Proportions follow the adult population
roughly: qualification levels (EQF), employment statuses and need flags as the Labour
Force Survey shows them; ages spread over working age; courses across the ISCED-F 2013
broad fields at EQF levels 2 to 7.
"""

from __future__ import annotations

import csv
import io
import random
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from schwifty import IBAN

from services.accounts.handlers.imports import COLUMNS as IMPORT_COLUMNS


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    agency_id: str
    departments: tuple[str, ...]
    weight: int  # share of the population, in percent
    bank_code: str  # a bank of the region's providers (5-digit French bank code)


REGIONS = (
    Region("IDF", "Île-de-France", "ft-idf", ("75", "92", "93", "94"), 36, "30004"),
    Region("ARA", "Auvergne-Rhône-Alpes", "ft-ara", ("69", "38", "63"), 24, "10278"),
    Region("OCC", "Occitanie", "ft-occ", ("31", "34", "30"), 18, "13506"),
    Region("HDF", "Hauts-de-France", "ft-hdf", ("59", "62", "80"), 17, "16275"),
    Region("BRE", "Bretagne", "ft-bre", ("35", "29", "56"), 5, "15589"),
)
COUNTRY = "FR"
STATE_FUNDER = "state-fr"
EMPLOYER_FUNDER = "employer-transalp-logistique"
REGION_FUNDER = "region-hdf"  # the Hauts-de-France region tops up its job seekers


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


GIVEN = _words(
    "Camille Léa Manon Chloé Inès Sarah Emma Jade Louise Alice Julie Nadia Fatima Sophie "
    "Nathalie Isabelle Céline Amina Claire Aurélie Hugo Lucas Thomas Nicolas Julien Karim "
    "Mehdi Antoine Maxime Pierre Louis Gabriel Arthur Yanis Olivier Stéphane David Théo "
    "Mamadou Rémi"
)
FEMALE_GIVEN = 20  # the first names of GIVEN are women's (the NIR's first digit: 2)
FAMILY = _words(
    "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent "
    "Lefebvre Michel Garcia David Bertrand Roux Vincent Fournier Morel Girard André Mercier "
    "Dupont Lambert Bonnet François Martinez Legrand Garnier Faure Rousseau Blanc Guerin "
    "Muller Henry Roussel Nicolas Perrin Morin Mathieu Clément Gauthier Dumont Lopez Fontaine "
    "Chevalier Robin Diallo Benali Nguyen Traoré"
)

# (EQF level, percent): adults 18-67 by highest qualification
EQF = ((0, 1), (1, 4), (2, 8), (3, 22), (4, 22), (5, 10), (6, 17), (7, 14), (8, 2))
EMPLOYMENT = (("employed", 68), ("unemployed", 8), ("self_employed", 10), ("inactive", 14))


def weighted(rng: random.Random, pairs: tuple[tuple[Any, int], ...]) -> Any:
    return rng.choices([v for v, _ in pairs], weights=[w for _, w in pairs])[0]


def ascii_slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalnum())


@dataclass(frozen=True)
class Learner:
    index: int
    national_id: str
    birth_date: date
    region: Region
    qualification_level: int
    employment_status: str
    need_flags: tuple[str, ...]
    given_name: str
    family_name: str
    email: str
    phone: str


def nir(sex: int, birth: date, department: str, commune: int, order: int) -> str:
    """A French social security number (NIR) with its key: the form a national eID
    returns."""
    body = f"{sex}{birth.year % 100:02d}{birth.month:02d}{department}{commune:03d}{order:03d}"
    return body + f"{97 - int(body) % 97:02d}"


def need_flags(rng: random.Random, age: int, eqf: int, status: str) -> tuple[str, ...]:
    flags = []
    if rng.random() < 0.07:
        flags.append("disability")
    if status == "unemployed" and rng.random() < 0.4:
        flags.append("long_term_unemployed")
    if eqf <= 2 and age < 30 and rng.random() < 0.5:
        flags.append("early_school_leaver")
    if 25 <= age <= 50 and rng.random() < 0.05:
        flags.append("single_parent")
    if rng.random() < 0.03:
        flags.append("carer")
    return tuple(sorted(flags))


def learners(seed: int, cohort: int, count: int, today: date) -> list[Learner]:
    """``count`` adults of working age; national ids are unique within a cohort and the
    cohort's number is in them (the commune code), so cohorts never share a person."""
    rng = random.Random(f"learners:{seed}:{cohort}")
    taken: set[str] = set()
    people = []
    for i in range(count):
        region = weighted(rng, tuple((r, r.weight) for r in REGIONS))
        age = min(66, max(19, int(rng.triangular(19, 66, 40))))
        birth = today - timedelta(days=age * 365 + rng.randint(30, 330))
        eqf = weighted(rng, EQF)
        if age < 22:
            eqf = min(eqf, 4)
        status = weighted(rng, EMPLOYMENT)
        if age > 62 and rng.random() < 0.5:
            status = "inactive"
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        sex = 2 if GIVEN.index(given) < FEMALE_GIVEN else 1
        department = rng.choice(region.departments)
        commune, order = 100 + cohort % 900, rng.randint(1, 999)
        national_id = nir(sex, birth, department, commune, order)
        while national_id in taken:
            order = order % 999 + 1
            national_id = nir(sex, birth, department, commune, order)
        taken.add(national_id)
        people.append(
            Learner(
                index=i,
                national_id=national_id,
                birth_date=birth,
                region=region,
                qualification_level=eqf,
                employment_status=status,
                need_flags=need_flags(rng, age, eqf, status),
                given_name=given,
                family_name=family,
                email=f"{ascii_slug(given)}.{ascii_slug(family)}.{cohort}{i:05d}@example.org",
                phone=f"+33 6 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} "
                f"{rng.randint(10, 99)}",
            )
        )
    return people


# the CSV import's own columns, so the demo's file is what the import reads
CSV_COLUMNS = IMPORT_COLUMNS


def accounts_csv(people: list[Learner]) -> str:
    """The bulk onboarding file an agency uploads (``POST /v1/accounts/imports``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in people:
        writer.writerow(
            (
                p.national_id,
                p.birth_date.isoformat(),
                COUNTRY,
                p.region.code,
                p.qualification_level,
                p.employment_status,
                ";".join(p.need_flags),
                p.given_name,
                p.family_name,
                p.email,
                p.phone,
            )
        )
    return out.getvalue()


@dataclass(frozen=True)
class CourseKind:
    isced: str
    title: str
    eqf: int
    hours: int
    price: int  # EUR
    language: str
    outcomes: tuple[str, ...]
    tags: tuple[str, ...] = ()
    mode: str = "in_person"


# ISCED-F | title | EQF | hours | price (EUR) | language | mode | tags, then the learning
# outcomes (separated by ;) on an indented line
COURSE_TABLE = """
0021|Remise à niveau en français et calcul|2|120|900|fr|in_person|basic
    Lire et rédiger un courrier simple;Calculer des pourcentages
0031|Prendre la parole en public|4|21|650|fr|blended|
    Structurer une intervention orale
0114|Formateur professionnel d'adultes|5|280|3200|fr|in_person|
    Concevoir une séquence de formation;Évaluer les acquis
0211|Montage vidéo avec des outils libres|4|70|1400|fr|in_person|digital
    Monter une vidéo courte;Exporter pour le web
0231|English for the workplace (B1)|4|60|1100|en|online|
    Hold a meeting in English;Write professional e-mails
0311|Initiation à l'économie d'entreprise|5|35|800|fr|online|
    Lire un compte de résultat
0411|Comptabilité et paie|5|210|2800|fr|in_person|
    Tenir une comptabilité générale;Établir des bulletins de paie
0413|Manager une équipe de proximité|6|56|2100|fr|in_person|
    Conduire un entretien annuel;Organiser le travail d'une équipe
0416|Vente et relation client|4|140|1900|fr|in_person|
    Conduire un entretien de vente
0421|Droit du travail pour les PME|6|28|990|fr|online|
    Appliquer les règles du contrat de travail
0588|Transition écologique en entreprise|5|35|950|fr|blended|green
    Réaliser un bilan carbone simplifié
0611|Bureautique : tableur avancé|3|35|600|fr|online|digital
    Construire un tableau croisé dynamique
0612|Administrateur de bases de données|6|350|4500|fr|in_person|digital
    Administrer PostgreSQL;Sauvegarder et restaurer une base
0613|Développeur web et web mobile|5|600|6500|fr|blended|digital
    Développer une interface web;Développer une API
0613|Python for data analysis|6|80|2400|en|online|digital
    Clean a data set with pandas;Plot and report results
0713|Habilitation électrique B1V-BR|3|21|700|fr|in_person|safety
    Intervenir en sécurité sur une installation basse tension
0715|Soudage à l'arc (TIG, MIG)|3|140|2600|fr|in_person|
    Souder des tôles d'acier en sécurité;Lire un mode opératoire
0716|Maintenance des véhicules électriques|4|105|2300|fr|in_person|green
    Diagnostiquer une batterie de traction
0732|Installateur de pompes à chaleur|4|140|2900|fr|in_person|green
    Installer et mettre en service une pompe à chaleur
0811|Agroécologie et maraîchage biologique|4|280|3100|fr|in_person|green
    Conduire une culture maraîchère biologique
0913|Aide-soignant : gestes et soins|4|210|2700|fr|in_person|
    Réaliser les soins d'hygiène;Mesurer les paramètres vitaux
0922|Accompagnant éducatif petite enfance|3|210|2200|fr|in_person|
    Accompagner le développement du jeune enfant
1013|Cuisine de collectivité|3|175|2000|fr|in_person|
    Appliquer les règles d'hygiène HACCP;Produire des repas en volume
1041|Permis poids lourd (C)|3|140|2500|fr|in_person|mobility
    Conduire un poids lourd en sécurité
1041|Logistique et cariste (CACES R489)|3|35|850|fr|in_person|safety
    Conduire un chariot élévateur en sécurité
1032|Agent de sûreté et de sécurité privée|3|175|1800|fr|in_person|safety
    Prévenir les risques dans un site
"""


def _courses(table: str) -> tuple[CourseKind, ...]:
    kinds = []
    lines = table.strip().splitlines()
    for line, outcomes in zip(lines[::2], lines[1::2], strict=True):
        isced, title, eqf, hours, price, language, mode, tags = line.split("|")
        kinds.append(
            CourseKind(
                isced,
                title,
                int(eqf),
                int(hours),
                int(price),
                language,
                tuple(o.strip() for o in outcomes.split(";")),
                tuple(t for t in tags.split(",") if t),
                mode,
            )
        )
    return tuple(kinds)


COURSES = _courses(COURSE_TABLE)

PROVIDER_WORDS = _words("Atelier Institut Centre Campus École Académie Maison Forum")
PROVIDER_NAMES = _words(
    "Horizon Compétences Avenir Métiers Savoir-Faire Trajectoires Passerelle Numérique "
    "Artisanat Transition Vauban Lumière Bocage Garonne Armor Escaut Belledonne Ventoux"
)


@dataclass(frozen=True)
class ProviderPlan:
    index: int
    region: Region
    name: str
    registration_number: str
    iban: str
    bic: str


def providers(seed: int, cohort: int, count: int) -> list[ProviderPlan]:
    """Training providers spread over the regions, each with a real-format IBAN of a bank
    of its region and a SIRET as registration number (the cohort is in it)."""
    rng = random.Random(f"providers:{seed}:{cohort}")
    plans = []
    for i in range(count):
        region = REGIONS[i % len(REGIONS)]
        name = f"{rng.choice(PROVIDER_WORDS)} {rng.choice(PROVIDER_NAMES)} {region.name}"
        siret = f"{seed % 1000:03d}{cohort % 1000:03d}{i:04d}{rng.randint(0, 9999):04d}"
        iban = IBAN.generate("FR", bank_code=region.bank_code + "00001", account_code=siret[:11])
        plans.append(ProviderPlan(i, region, name, siret, iban.compact, f"{_bic(region)}"))
    return plans


def _bic(region: Region) -> str:
    return {
        "30004": "BNPAFRPPXXX",
        "10278": "CMCIFR2AXXX",
        "13506": "CRLYFRPPXXX",
        "16275": "CEPAFRPP627",
        "15589": "CMBRFR2BXXX",
    }[region.bank_code]


def provider_body(plan: ProviderPlan, today: date) -> dict[str, Any]:
    return {
        "name": plan.name,
        "country": COUNTRY,
        "registration_number": plan.registration_number,
        "quality_assurance": {
            "scheme": "Qualiopi",
            "valid_until": (today + timedelta(days=700)).isoformat(),
        },
        "payout": {"iban": plan.iban, "bic": plan.bic},
    }


def course_body(
    kind: CourseKind, provider: ProviderPlan, sessions: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "kind": "training",
        "title": kind.title,
        "description": f"{kind.title} : {kind.hours} heures avec {provider.name}.",
        "language": kind.language,
        "learning_outcomes": list(kind.outcomes),
        "eqf_level": kind.eqf,
        "isced_field": kind.isced,
        "workload_hours": kind.hours,
        "mode": kind.mode,
        "region": provider.region.name,
        "price": kind.price * 100,
        "tags": list(kind.tags),
        "sessions": sessions,
        "descriptor": {
            "title": f"Attestation : {kind.title}",
            "issuer_countries": [COUNTRY],
            "issuer_regions": [provider.region.name],
            "awarding_bodies": [provider.name],
            "assessment_type": "Évaluation pratique en fin de parcours",
            "quality_assurance": "Certification Qualiopi, audit externe",
            "supervision": "onsite_identity_verification",
            "grading_scheme": "pass/fail",
        },
    }


def session(session_id: uuid.UUID, start: datetime, end: datetime, seats: int) -> dict[str, Any]:
    return {
        "session_id": str(session_id),
        "start": start.astimezone(UTC).isoformat(),
        "end": end.astimezone(UTC).isoformat(),
        "seats": seats,
    }
