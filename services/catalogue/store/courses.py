"""Course rows, their versions and their workflow history.

``courses`` holds the current version flattened (for the registry's search and facets) and
its full-text vector; ``course_versions`` keeps the full content of every version.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue.domain import isced
from services.catalogue.domain.courses import Course
from shared.db import fetch_all, fetch_one

# PostgreSQL text-search configurations by ISO 639-1 code; other languages use 'simple'
TS_CONFIGS = {
    "ar": "arabic", "ca": "catalan", "da": "danish", "de": "german", "el": "greek",
    "en": "english", "es": "spanish", "eu": "basque", "fi": "finnish", "fr": "french",
    "ga": "irish", "hu": "hungarian", "hy": "armenian", "id": "indonesian", "it": "italian",
    "lt": "lithuanian", "nl": "dutch", "no": "norwegian", "pt": "portuguese",
    "ro": "romanian", "ru": "russian", "sr": "serbian", "sv": "swedish", "tr": "turkish",
}  # fmt: skip

# Weighted: a word in the title counts most, then the learning outcomes, then the
# description and classification. The language-specific vector matches stems
# ("developers" finds "development"); the 'simple' one matches exact words in any language.
# The configuration's name is kept in ``search_config``: the registry parses a query with
# each course's own configuration (changing this mapping needs a migration that rebuilds
# the vectors and that column).
SEARCH_VECTOR = (
    "setweight(to_tsvector(CAST(:ts_config AS regconfig), :s_title), 'A') || "
    "setweight(to_tsvector(CAST(:ts_config AS regconfig), :s_outcomes), 'B') || "
    "setweight(to_tsvector(CAST(:ts_config AS regconfig), :s_body), 'C') || "
    "setweight(to_tsvector('simple', :s_all), 'D')"
)

# a course with the content of its current version
CURRENT = (
    "SELECT c.course_id, c.provider_id, c.status, c.status_reason, c.status_note, c.version, "
    "v.content, "
    "c.created_at, c.updated_at, c.approved_at FROM catalogue.courses c "
    "JOIN catalogue.course_versions v ON v.course_id = c.course_id AND v.version = c.version "
)
VERSIONS = (
    "SELECT course_id, version, content, changed, created_by, created_at "
    "FROM catalogue.course_versions "
)

FLAT = ("kind", "title", "language", "eqf_level", "isced_field", "mode", "region", "price")


@dataclass(frozen=True)
class CourseRow:
    course_id: uuid.UUID
    provider_id: uuid.UUID
    status: str
    status_reason: str | None
    status_note: str | None
    version: int
    content: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    approved_at: datetime | None

    def domain(self) -> Course:
        return Course(
            course_id=str(self.course_id),
            provider_id=str(self.provider_id),
            status=self.status,  # type: ignore[arg-type]
            version=self.version,
        )


def ts_config(language: str) -> str:
    return TS_CONFIGS.get(language, "simple")


def _flat_params(content: dict[str, Any]) -> dict[str, Any]:
    outcomes = " ".join(content["learning_outcomes"])
    field = isced.lookup(content["isced_field"])
    body = " ".join(
        [content["description"], field.name if field else "", " ".join(content.get("tags") or [])]
    )
    starts = [s["start"] for s in content["sessions"]]
    return {
        **{k: content[k] for k in FLAT},
        "next_session": datetime.fromisoformat(min(starts)) if starts else None,
        "ts_config": ts_config(content["language"]),
        "s_title": content["title"],
        "s_outcomes": outcomes,
        "s_body": body,
        "s_all": f"{content['title']} {outcomes} {body}",
    }


async def insert(
    session: AsyncSession,
    course_id: uuid.UUID,
    provider_id: uuid.UUID,
    content: dict[str, Any],
    actor: str,
    now: datetime,
) -> None:
    await session.execute(
        text(
            "INSERT INTO catalogue.courses (course_id, provider_id, status, version, kind, "
            "title, language, eqf_level, isced_field, mode, region, price, next_session, "
            "search, search_config, created_at, updated_at) VALUES (:course_id, :provider_id, "
            "'draft', 1, :kind, :title, :language, :eqf_level, :isced_field, :mode, :region, "
            f":price, :next_session, {SEARCH_VECTOR}, :ts_config, :now, :now)"
        ),
        {"course_id": course_id, "provider_id": provider_id, "now": now, **_flat_params(content)},
    )
    await insert_version(session, course_id, 1, content, (), actor, now)


async def insert_version(
    session: AsyncSession,
    course_id: uuid.UUID,
    version: int,
    content: dict[str, Any],
    changed: tuple[str, ...],
    actor: str,
    now: datetime,
) -> None:
    await session.execute(
        text(
            "INSERT INTO catalogue.course_versions (course_id, version, content, changed, "
            "created_by, created_at) VALUES (:c, :v, CAST(:content AS jsonb), :changed, "
            ":actor, :now)"
        ),
        {
            "c": course_id,
            "v": version,
            "content": json.dumps(content),
            "changed": list(changed),
            "actor": actor,
            "now": now,
        },
    )


async def apply_revision(
    session: AsyncSession,
    course_id: uuid.UUID,
    version: int,
    status: str,
    content: dict[str, Any],
    changed: tuple[str, ...],
    actor: str,
    now: datetime,
) -> None:
    await insert_version(session, course_id, version, content, changed, actor, now)
    await session.execute(
        text(
            "UPDATE catalogue.courses SET version = :version, status = :status, kind = :kind, "
            "title = :title, language = :language, eqf_level = :eqf_level, "
            "isced_field = :isced_field, mode = :mode, region = :region, price = :price, "
            f"next_session = :next_session, search = {SEARCH_VECTOR}, "
            "search_config = :ts_config, updated_at = :now "
            "WHERE course_id = :course_id"
        ),
        {
            "course_id": course_id,
            "version": version,
            "status": status,
            "now": now,
            **_flat_params(content),
        },
    )


async def set_status(
    session: AsyncSession,
    course_id: uuid.UUID,
    status: str,
    reason_code: str | None,
    now: datetime,
    note: str | None = None,
) -> None:
    approved = ", approved_at = :now" if status == "approved" else ""
    await session.execute(
        text(
            "UPDATE catalogue.courses SET status = :status, status_reason = :reason, "
            f"status_note = :note, updated_at = :now{approved} WHERE course_id = :c"
        ),
        {"c": course_id, "status": status, "reason": reason_code, "note": note, "now": now},
    )


async def record(
    session: AsyncSession,
    course_id: uuid.UUID,
    version: int,
    action: str,
    from_status: str | None,
    to_status: str,
    actor: str,
    reason_code: str | None,
    note: str | None = None,
) -> None:
    await session.execute(
        text(
            "INSERT INTO catalogue.course_history (course_id, version, action, from_status, "
            "to_status, actor, reason, note) VALUES (:c, :v, :a, :f, :t, :actor, :reason, :note)"
        ),
        {
            "c": course_id,
            "v": version,
            "a": action,
            "f": from_status,
            "t": to_status,
            "actor": actor,
            "reason": reason_code,
            "note": note,
        },
    )


async def get(
    session: AsyncSession, course_id: uuid.UUID, *, lock: bool = False
) -> CourseRow | None:
    if lock:
        locked = await session.scalar(
            text("SELECT course_id FROM catalogue.courses WHERE course_id = :c FOR UPDATE"),
            {"c": course_id},
        )
        if locked is None:
            return None
    return await fetch_one(session, CourseRow, CURRENT + "WHERE c.course_id = :c", {"c": course_id})


@dataclass(frozen=True)
class VersionRow:
    course_id: uuid.UUID
    version: int
    content: dict[str, Any]
    changed: list[str]
    created_by: str
    created_at: datetime


async def versions(session: AsyncSession, course_id: uuid.UUID) -> list[VersionRow]:
    sql = VERSIONS + "WHERE course_id = :c ORDER BY version"
    return await fetch_all(session, VersionRow, sql, {"c": course_id})


async def version(session: AsyncSession, course_id: uuid.UUID, number: int) -> VersionRow | None:
    sql = VERSIONS + "WHERE course_id = :c AND version = :v"
    return await fetch_one(session, VersionRow, sql, {"c": course_id, "v": number})


async def history(session: AsyncSession, course_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            text(
                "SELECT version, action, from_status, to_status, actor, reason, note, at "
                "FROM catalogue.course_history WHERE course_id = :c ORDER BY id"
            ),
            {"c": course_id},
        )
    ).mappings()
    return [dict(r) for r in rows]


async def list_courses(
    session: AsyncSession,
    provider_id: uuid.UUID | None,
    status: str | None,
    after: uuid.UUID | None,
    limit: int,
    agency_id: str | None = None,
) -> list[CourseRow]:
    """Courses by id; ``agency_id``: only those of the providers that agency registered."""
    clauses: list[str] = ["TRUE"]
    params: dict[str, Any] = {"limit": limit}
    if agency_id is not None:
        clauses.append(
            "c.provider_id IN (SELECT provider_id FROM catalogue.providers WHERE agency_id = :ag)"
        )
        params["ag"] = agency_id
    if provider_id is not None:
        clauses.append("c.provider_id = :provider")
        params["provider"] = provider_id
    if status is not None:
        clauses.append("c.status = :status")
        params["status"] = status
    if after is not None:
        clauses.append("c.course_id > :after")
        params["after"] = after
    sql = CURRENT + f"WHERE {' AND '.join(clauses)} ORDER BY c.course_id LIMIT :limit"
    return await fetch_all(session, CourseRow, sql, params)
