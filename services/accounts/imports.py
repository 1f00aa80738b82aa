"""Bulk onboarding from a CSV file: each line its own savepoint, a report per line.

Idempotent on the national id: a line whose person already has an account is reported
as ``existing`` and changes nothing. A bad line never stops or half-applies the others.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.accounts import handlers
from services.accounts.commands import OpenAccount
from services.accounts.domain import AccountError
from shared.db import transaction
from shared.outbox import EventContext, Outbox

COLUMNS = (
    "national_id", "birth_date", "country", "region", "qualification_level",
    "employment_status", "need_flags", "given_name", "family_name", "email", "phone",
)
REQUIRED = {"national_id", "birth_date", "country", "region", "qualification_level",
            "employment_status", "given_name", "family_name"}
MAX_FIELD = 500


@dataclass
class ImportReport:
    total: int = 0
    opened: int = 0
    existing: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "opened": self.opened,
            "existing": self.existing,
            "rejected_count": len(self.rejected),
            "rejected": self.rejected,
        }


class BadHeader(ValueError):
    pass


def parse(text_data: str) -> Iterator[tuple[int, dict[str, str] | str]]:
    """Yield (line number, fields) or (line number, error) per data line."""
    reader = csv.DictReader(io.StringIO(text_data))
    header = set(reader.fieldnames or ())
    missing = REQUIRED - header
    if missing:
        raise BadHeader("the header lacks column(s): " + ", ".join(sorted(missing)))
    for row in reader:
        line = reader.line_num
        if None in row:
            yield line, "more fields than the header names"
            continue
        yield line, {k: (v or "").strip() for k, v in row.items() if k in COLUMNS}


def to_command(fields: dict[str, str]) -> OpenAccount:
    for name, value in fields.items():
        if len(value) > MAX_FIELD:
            raise ValueError(f"{name}: longer than {MAX_FIELD} characters")
    try:
        level = int(fields.get("qualification_level", ""))
    except ValueError:
        raise ValueError("qualification_level: not an integer") from None
    flags = [f for f in fields.get("need_flags", "").split(";") if f]
    personal: dict[str, Any] = {
        "given_name": fields.get("given_name", ""),
        "family_name": fields.get("family_name", ""),
    }
    for optional in ("email", "phone"):
        if fields.get(optional):
            personal[optional] = fields[optional]
    return OpenAccount.model_validate(
        {
            "national_id": fields.get("national_id", ""),
            "birth_date": fields.get("birth_date", ""),
            "country": fields.get("country", ""),
            "region": fields.get("region", ""),
            "qualification_level": level,
            "employment_status": fields.get("employment_status", ""),
            "need_flags": flags,
            "personal": personal,
        }
    )


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "line"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


async def run_import(
    sessions: async_sessionmaker[AsyncSession],
    outbox: Outbox,
    config: handlers.AccountsConfig,
    text_data: str,
    agency_id: str,
    ctx: EventContext,
    *,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    report = ImportReport()
    lines = list(parse(text_data))
    for start in range(0, len(lines), batch_size):
        chunk = lines[start : start + batch_size]
        async with transaction(sessions) as session:
            for line, fields in chunk:
                report.total += 1
                if isinstance(fields, str):
                    report.rejected.append({"line": line, "error": fields})
                    continue
                try:
                    cmd = to_command(fields)
                    async with session.begin_nested():
                        opened = await handlers.open_account(
                            session, outbox, config, cmd, agency_id, ctx
                        )
                except ValidationError as exc:
                    report.rejected.append({"line": line, "error": _describe(exc)})
                    continue
                except (ValueError, AccountError) as exc:
                    report.rejected.append({"line": line, "error": str(exc)})
                    continue
                if opened.created:
                    report.opened += 1
                else:
                    report.existing += 1
        if progress is not None:
            progress(len(chunk))
    return report
