"""Bulk onboarding from a CSV file, with a report per line.

Idempotent on the national id: a line whose person already has an account is reported
as ``existing`` and changes nothing. A bad line never stops or half-applies the others;
it is reported with its line number (the header is line 1; a record spanning several
lines is numbered by its first) and the reason. A national id that appears twice in one
file is a mistake in the file: the later line is rejected, on every run. A person whose
account another agency manages is rejected too ("managed by another agency"), without the
account id or the agency: an import does not reveal whom other agencies manage.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from services.accounts.commands import OpenAccount
from services.accounts.domain.errors import AccountError, BadHeader, ManagedByAnotherAgency
from services.accounts.handlers.accounts import (
    Accounts,
    NewAccount,
    Opened,
    insert_new,
    open_many,
    prepare,
)
from shared.db import UnitOfWork, is_transient
from shared.outbox import EventContext

COLUMNS = (
    "national_id",
    "birth_date",
    "country",
    "region",
    "qualification_level",
    "employment_status",
    "need_flags",
    "given_name",
    "family_name",
    "email",
    "phone",
)
OPTIONAL = ("need_flags", "email", "phone")
REQUIRED = tuple(name for name in COLUMNS if name not in OPTIONAL)
PERSONAL = ("given_name", "family_name", "email", "phone")
MAX_FIELD = 500
MAX_ERROR = 300
MANAGED_ELSEWHERE = ManagedByAnotherAgency().detail

Parsed = tuple[int, dict[str, str] | str]
Progress = Callable[[int, int], None]


@dataclass
class ImportReport:
    total: int = 0
    opened: int = 0
    existing: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    def reject(self, line: int, error: str) -> None:
        if len(error) > MAX_ERROR:
            error = error[: MAX_ERROR - 1] + "…"
        self.rejected.append({"line": line, "error": error})

    def count(self, line: int, opened: Opened, agency_id: str) -> None:
        if opened.created:
            self.opened += 1
        elif opened.named_to(agency_id):
            self.existing += 1
        else:
            self.reject(line, MANAGED_ELSEWHERE)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "opened": self.opened,
            "existing": self.existing,
            "rejected_count": len(self.rejected),
            "rejected": self.rejected,
            "ignored_columns": self.ignored_columns,
        }


@dataclass(frozen=True)
class CsvFile:
    header: list[str]
    ignored_columns: list[str]
    lines: Iterator[Parsed]


def parse(text_data: str) -> CsvFile:
    """Read the header (or raise :class:`BadHeader`); the lines follow lazily, each as
    (line number, fields) or (line number, what is wrong with it)."""
    reader = csv.reader(io.StringIO(text_data, newline=""))
    header: list[str] = []
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                header = [cell.strip().lower() for cell in row]
                break
    except csv.Error as exc:
        raise BadHeader(f"the header line is not readable CSV: {exc}") from exc
    if not header:
        raise BadHeader("the file is empty: it needs a header line naming the columns")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise BadHeader("the header names column(s) twice: " + ", ".join(duplicates))
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise BadHeader("the header lacks column(s): " + ", ".join(missing))
    ignored = [name for name in header if name not in COLUMNS]
    return CsvFile(header, ignored, _lines(reader, header))


def _lines(reader: Any, header: list[str]) -> Iterator[Parsed]:
    last = reader.line_num
    while True:
        start = last + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if reader.line_num == last:  # the reader cannot move on
                yield start, f"unreadable CSV: {exc}"
                return
            last = reader.line_num
            yield start, f"unreadable CSV: {exc}"
            continue
        last = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        if len(row) > len(header):
            yield start, f"more fields ({len(row)}) than the header names ({len(header)})"
            continue
        # trailing empty optional cells may be left out
        yield (
            start,
            {
                name: (row[i] if i < len(row) else "").strip()
                for i, name in enumerate(header)
                if name in COLUMNS
            },
        )


def to_command(fields: dict[str, str]) -> OpenAccount:
    for name in COLUMNS:
        if len(fields.get(name, "")) > MAX_FIELD:
            raise ValueError(f"{name}: longer than {MAX_FIELD} characters")
    for name in REQUIRED:
        if not fields.get(name):
            raise ValueError(f"{name}: missing")
    try:
        level = int(fields["qualification_level"])
    except ValueError:
        raise ValueError("qualification_level: not a whole number from 0 to 8") from None
    flags = [f.strip() for f in fields.get("need_flags", "").split(";") if f.strip()]
    personal = {name: fields[name] for name in PERSONAL if fields.get(name)}
    return OpenAccount.model_validate(
        {
            "national_id": fields["national_id"],
            "birth_date": fields["birth_date"],
            "country": fields["country"],
            "region": fields["region"],
            "qualification_level": level,
            "employment_status": fields["employment_status"],
            "need_flags": flags,
            "personal": personal,
        }
    )


def _describe(exc: ValidationError) -> str:
    """Field errors named after the CSV columns (``given_name``, not ``personal.given_name``)."""
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if loc and loc[0] == "personal" and len(loc) > 1:
            loc = loc[1:]
        if loc and loc[0] == "need_flags":
            loc = loc[:1]
        parts.append(f"{'.'.join(loc) or 'line'}: {err['msg']}")
    return "; ".join(parts)


async def run_import(
    accounts: Accounts,
    uow: UnitOfWork,
    text_data: str,
    agency_id: str,
    ctx: EventContext,
    *,
    batch_size: int = 1000,
    progress: Progress | None = None,
) -> ImportReport:
    """Open an account per good line; ``progress(done, total)`` after each batch.

    Each batch of lines is validated in memory, then opened in one transaction of a few
    statements. Should the database refuse a value all the same, that batch is redone one
    savepoint per line, so that only the offending line is rejected.
    Raises :class:`BadHeader` (nothing done) when the file has no usable header.
    """
    csv_file = parse(text_data)
    lines = list(csv_file.lines)
    run = _Run(
        accounts, uow, ctx, agency_id, ImportReport(ignored_columns=csv_file.ignored_columns)
    )
    done = 0
    for start in range(0, len(lines), batch_size):
        chunk = lines[start : start + batch_size]
        now = accounts.clock.now()
        ready: list[tuple[int, NewAccount]] = []
        for line, fields in chunk:
            run.report.total += 1
            outcome = run.prepare(now, line, fields)
            if isinstance(outcome, str):
                run.report.reject(line, outcome)
            else:
                ready.append((line, outcome))
        if ready:
            await run.open(ready)
        done += len(chunk)
        if progress is not None:
            progress(done, len(lines))
    run.report.rejected.sort(key=lambda r: int(r["line"]))
    return run.report


@dataclass
class _Run:
    """One import: who asks, how its transactions open, and its report so far."""

    accounts: Accounts
    uow: UnitOfWork
    ctx: EventContext
    agency_id: str
    report: ImportReport
    # national id hash -> first line with it
    seen: dict[str, int] = field(default_factory=dict)

    def prepare(self, now: datetime, line: int, fields: dict[str, str] | str) -> NewAccount | str:
        """The account a line asks for, or why it cannot have one."""
        if isinstance(fields, str):
            return fields
        try:
            cmd = to_command(fields)
        except ValidationError as exc:
            return _describe(exc)
        except ValueError as exc:
            return str(exc)
        try:
            new = prepare(cmd, self.agency_id, self.accounts.config, now)
        except AccountError as exc:
            return exc.detail
        first = self.seen.setdefault(new.national_id_hash, line)
        if first != line:
            return f"duplicate national id: the same as on line {first}"
        return new

    async def open(self, ready: list[tuple[int, NewAccount]]) -> None:
        try:
            async with self.uow() as session:
                ctx = self.accounts.context(session, self.ctx)
                opened = await open_many([n for _, n in ready], ctx)
        except DBAPIError as exc:
            if is_transient(exc):
                raise
            await self.open_one_by_one(ready)
            return
        for line, new in ready:
            self.report.count(line, opened[new.national_id_hash], self.agency_id)

    async def open_one_by_one(self, ready: list[tuple[int, NewAccount]]) -> None:
        async with self.uow() as session:
            ctx = self.accounts.context(session, self.ctx)
            for line, new in ready:
                try:
                    async with session.begin_nested():
                        opened = await insert_new(new, ctx)
                except DBAPIError as exc:
                    if is_transient(exc):
                        raise
                    self.report.reject(line, "the database refused a value on this line")
                    continue
                self.report.count(line, opened, self.agency_id)
