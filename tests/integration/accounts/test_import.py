"""Bulk onboarding from CSV: good lines opened once, bad lines reported by line number with
a reason, and a second run of the same file changes nothing."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.integration.support.accounts import Accounts, assert_problem, event_type

pytestmark = pytest.mark.postgres

HEADER = (
    "national_id,birth_date,country,region,qualification_level,employment_status,"
    "need_flags,given_name,family_name,email,phone"
)
LINES = 10_000
BAD_KINDS: dict[str, str] = {
    # kind -> a word the rejection reason must contain
    "bad-date": "birth_date",
    "impossible-date": "birth_date",
    "unknown-country": "country",
    "level-12": "qualification_level",
    "level-word": "qualification_level",
    "missing-name": "given_name",
    "too-many-fields": "more fields",
    "too-few-fields": "family_name",
    "duplicate-national-id": "national id",
    "too-young": "working age",
    "bad-employment": "employment_status",
    "huge-field": "region",
    "bad-email": "email",
    "bad-flag": "need_flags",
    "missing-national-id": "national_id",
}
COUNTRIES = ["FR", "BE", "DE", "ES", "IT", "PT", "NL", "AT", "IE", "PL"]
REGIONS = ["Bretagne", "Wallonie", "Bayern", "Andalucía", '"Provence-Alpes-Côte d\'Azur, Var"']
EMPLOYMENT = ["employed", "unemployed", "self_employed", "inactive"]
FLAGS = ["", "", "disability", "single_parent;low_literacy", "disability;long_term_unemployed"]


@dataclass
class Generated:
    text: str
    good_lines: int
    lines: int
    bad: dict[int, str] = field(default_factory=dict)  # file line number -> expected word


def good_fields(rng: random.Random, i: int) -> list[str]:
    birth = date(1965, 1, 1) + timedelta(days=rng.randrange(35 * 365))
    return [
        f"IMP-{i:07d}",
        birth.isoformat(),
        rng.choice(COUNTRIES),
        rng.choice(REGIONS),
        str(rng.randrange(9)),
        rng.choice(EMPLOYMENT),
        rng.choice(FLAGS),
        f"Given{i}",
        f"Family{i}",
        f"person{i}@example.org" if i % 3 else "",
        f"+32 470 {i:06d}" if i % 4 == 0 else "",
    ]


def spoil(rng: random.Random, kind: str, fields: list[str], earlier_nid: str) -> str:
    f = list(fields)
    if kind == "bad-date":
        f[1] = "12/05/1985"
    elif kind == "impossible-date":
        f[1] = "2023-02-30"
    elif kind == "unknown-country":
        f[2] = "XX"
    elif kind == "level-12":
        f[4] = "12"
    elif kind == "level-word":
        f[4] = "three"
    elif kind == "missing-name":
        f[7] = ""
    elif kind == "too-many-fields":
        f.append("surplus")
    elif kind == "too-few-fields":
        f = f[:8]
    elif kind == "duplicate-national-id":
        f[0] = earlier_nid
    elif kind == "too-young":
        f[1] = (date.today() - timedelta(days=365 * 12)).isoformat()
    elif kind == "bad-employment":
        f[5] = "retired"
    elif kind == "huge-field":
        f[3] = "R" * 10_000
    elif kind == "bad-email":
        f[9] = "not-an-email"
    elif kind == "bad-flag":
        f[6] = "Not A Flag"
    elif kind == "missing-national-id":
        f[0] = ""
    else:
        raise AssertionError(kind)
    return ",".join(f)


def generate(lines: int = LINES, bad_count: int = 300, seed: int = 7) -> Generated:
    rng = random.Random(seed)
    # never spoil the very first lines, so that duplicates have an earlier good line
    bad_at = set(rng.sample(range(20, lines), bad_count))
    kinds = list(BAD_KINDS)
    out = [HEADER]
    gen = Generated(text="", good_lines=0, lines=lines)
    good_nids: list[str] = []
    for i in range(lines):
        line_no = i + 2  # the header is line 1
        fields = good_fields(rng, i)
        if i in bad_at:
            kind = kinds[len(gen.bad) % len(kinds)]
            out.append(spoil(rng, kind, fields, rng.choice(good_nids)))
            gen.bad[line_no] = BAD_KINDS[kind]
        else:
            out.append(",".join(fields))
            good_nids.append(fields[0])
            gen.good_lines += 1
    gen.text = "\n".join(out) + "\n"
    return gen


def check_report(report: dict[str, Any], gen: Generated) -> None:
    rejected = {r["line"]: r["error"] for r in report["rejected"]}
    assert set(rejected) == set(gen.bad), (
        sorted(set(rejected) ^ set(gen.bad))[:20],
        [r for r in report["rejected"] if r["line"] not in gen.bad][:5],
    )
    for line, word in gen.bad.items():
        assert word in rejected[line], (line, word, rejected[line])
        assert len(rejected[line]) < 1000, (line, rejected[line][:200])
    assert report["rejected_count"] == len(gen.bad)
    assert report["total"] == gen.lines


async def post_csv(accounts: Accounts, text: str | bytes, **headers: str) -> Any:
    content = text.encode() if isinstance(text, str) else text
    return await accounts.client.post(
        "/v1/accounts/imports",
        content=content,
        headers={**accounts.agency, "Content-Type": "text/csv", **headers},
        timeout=300,
    )


async def test_import_of_ten_thousand_lines_is_idempotent(accounts: Accounts) -> None:
    gen = generate()
    assert len(gen.bad) == 300 and gen.good_lines == LINES - 300

    r = await post_csv(accounts, gen.text)
    assert r.status_code == 200, r.text[:2000]
    report = r.json()
    check_report(report, gen)
    assert report["opened"] == gen.good_lines
    assert report["existing"] == 0
    assert await accounts.count("accounts") == gen.good_lines
    assert await accounts.count("personal_keys") == gen.good_lines
    opened_events = await accounts.count("outbox", "type = :t", t=event_type("AccountOpened"))
    assert opened_events == gen.good_lines
    assert await accounts.count("outbox") == gen.good_lines
    assert await accounts.count("outbox", "bulk") == gen.good_lines  # they give way
    assert await accounts.count("accounts", "agency_id = 'pes-fr'") == gen.good_lines

    again = await post_csv(accounts, gen.text)
    assert again.status_code == 200, again.text[:2000]
    report2 = again.json()
    check_report(report2, gen)
    assert report2["opened"] == 0
    assert report2["existing"] == gen.good_lines
    assert await accounts.count("accounts") == gen.good_lines
    assert await accounts.count("outbox") == gen.good_lines

    # an imported person reads back whole, from the quoted region too
    listed = await accounts.client.get("/v1/accounts?limit=500", headers=accounts.agency)
    regions = {a["region"] for a in listed.json()["items"]}
    assert "Provence-Alpes-Côte d'Azur, Var" in regions
    one = listed.json()["items"][0]
    assert one["personal"]["given_name"].startswith("Given")


async def test_a_line_never_half_applies(accounts: Accounts) -> None:
    """A bad line between good ones: the good ones are opened, the bad one leaves nothing."""
    text = "\n".join(
        [
            HEADER,
            "A-0001,1980-01-01,FR,Bretagne,3,employed,,Ana,Silva,,",
            "A-0002,1980-01-01,FR,Bretagne,3,employed,,Ben,Smith,,",
            "A-0003,2015-01-01,FR,Bretagne,3,employed,,Kid,Young,,",
            "A-0004,1980-01-01,FR,Bretagne,3,employed,,Cat,Jones,,",
        ]
    )
    r = await post_csv(accounts, text, **{"Content-Type": "text/csv; charset=utf-8"})
    assert r.status_code == 200, r.text
    assert r.json()["opened"] == 3
    assert [x["line"] for x in r.json()["rejected"]] == [4]
    assert await accounts.count("accounts") == 3
    assert await accounts.count("personal_keys") == 3
    assert await accounts.count("outbox") == 3


async def test_import_line_numbers_and_quoting(accounts: Accounts) -> None:
    text = (
        HEADER + "\r\n"
        '"Q-0001",1980-01-01,BE,"Bruxelles, Ixelles",3,employed,,"Anne ""Nan""",Dupont,,\r\n'
        "\r\n"  # a blank line counts as a line of the file
        'Q-0002,1980-01-01,BE,"two\nlines",12,employed,,Ana,Silva,,\r\n'
        "Q-0003,1980-01-01,BE,Namur,3,nope,,Ana,Silva,,\r\n"
    )
    r = await post_csv(accounts, "\ufeff" + text)  # with a byte order mark, as Excel writes
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["opened"] == 1, report
    # a record is numbered by the line it starts on
    assert [(x["line"], x["error"].split(":")[0]) for x in report["rejected"]] == [
        (4, "qualification_level"),
        (6, "employment_status"),
    ]


async def test_a_field_over_the_csv_limit_is_a_rejected_line(accounts: Accounts) -> None:
    text = "\n".join(
        [
            HEADER,
            "B-0001,1980-01-01,FR,Bretagne,3,employed,,Ana,Silva,,",
            f'B-0002,1980-01-01,FR,"{"R" * 200_000}",3,employed,,Ben,Smith,,',
            "B-0003,1980-01-01,FR,Bretagne,3,employed,,Cat,Jones,,",
        ]
    )
    r = await post_csv(accounts, text)
    assert r.status_code == 200, r.text[:500]
    report = r.json()
    assert report["opened"] == 2
    assert [x["line"] for x in report["rejected"]] == [3]
    assert len(r.content) < 5_000


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 422),
        (b"\n\n", 422),
        (b"national_id,birth_date\nX-1,1980-01-01\n", 422),
        (b"\xff\xfe\x00n\x00a\x00t", 400),
        (HEADER.replace("country", "country,country").encode() + b"\n", 422),
    ],
    ids=["empty", "blank-lines", "missing-columns", "not-utf8", "duplicate-column"],
)
async def test_a_bad_file_is_a_problem(accounts: Accounts, body: bytes, status: int) -> None:
    r = await post_csv(accounts, body)
    assert_problem(r, status)
    assert await accounts.count("accounts") == 0


async def test_header_only_imports_nothing(accounts: Accounts) -> None:
    r = await post_csv(accounts, HEADER + "\n")
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 0 and r.json()["opened"] == 0


async def test_the_import_refuses_what_is_not_csv(accounts: Accounts) -> None:
    r = await accounts.client.post(
        "/v1/accounts/imports", json={"national_id": "X-1"}, headers=accounts.agency
    )
    assert_problem(r, 415)
    assert await accounts.count("accounts") == 0


# --- the command line -------------------------------------------------------------------


async def test_cli_import(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``ila accounts import FILE --agency-id ID`` straight into the database. The command
    runs its own event loop, so it runs in a worker thread here."""
    from ila.cli import app
    from shared.settings import get_settings

    monkeypatch.setenv("ILA_DATABASE_URL", db_url)
    monkeypatch.setenv("ILA_LOG_JSON", "false")
    get_settings.cache_clear()
    runner = CliRunner()

    async def ila(*args: str) -> Any:
        return await asyncio.to_thread(runner.invoke, app, list(args))

    try:
        gen = generate(lines=1_000, bad_count=60, seed=11)
        source = tmp_path / "people.csv"
        source.write_text(gen.text)
        report_path = tmp_path / "rejected.json"
        args = ["accounts", "import", str(source), "--agency-id", "pes-nl"]
        result = await ila(*args, "--report", str(report_path))
        assert result.exit_code == 0, (result.output, result.exception)
        assert f"opened {gen.good_lines}" in result.output, result.output
        assert "rejected 60" in result.output, result.output
        rejected = json.loads(report_path.read_text())
        assert {r["line"] for r in rejected} == set(gen.bad)
        for r in rejected:
            assert gen.bad[r["line"]] in r["error"]

        again = await ila(*args)
        assert again.exit_code == 0, (again.output, again.exception)
        assert "opened 0" in again.output and f"existing {gen.good_lines}" in again.output
        assert "line " in again.output  # the first rejected lines, without --report

        assert await _counts(db_url) == (gen.good_lines, gen.good_lines, {"pes-nl"})

        missing = await ila("accounts", "import", str(tmp_path / "no.csv"), "--agency-id", "x")
        assert missing.exit_code != 0
        bad_agency = await ila("accounts", "import", str(source), "--agency-id", "no spaces")
        assert bad_agency.exit_code != 0
        no_header = tmp_path / "empty.csv"
        no_header.write_text("")
        empty = await ila("accounts", "import", str(no_header), "--agency-id", "pes-nl")
        assert empty.exit_code == 1 and "header" in empty.output, empty.output
        assert await _counts(db_url) == (gen.good_lines, gen.good_lines, {"pes-nl"})
    finally:
        get_settings.cache_clear()


async def _counts(db_url: str) -> tuple[int, int, set[str]]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            accounts = await conn.scalar(text("SELECT count(*) FROM accounts.accounts"))
            events = await conn.scalar(
                text("SELECT count(*) FROM accounts.outbox WHERE type = :t"),
                {"t": event_type("AccountOpened")},
            )
            agencies = (
                await conn.execute(text("SELECT DISTINCT agency_id FROM accounts.accounts"))
            ).scalars()
            return int(accounts or 0), int(events or 0), set(agencies)
    finally:
        await engine.dispose()


def test_generated_file_shape() -> None:
    gen = generate()
    lines = gen.text.splitlines()
    assert len(lines) == LINES + 1
    assert len(gen.bad) == 300
    assert len(set(gen.bad.values())) == len(set(BAD_KINDS.values()))


async def test_control_characters_are_a_rejected_line(accounts: Accounts) -> None:
    text = "\n".join(
        [
            HEADER,
            "C-0001,1980-01-01,FR,Bre\x00tagne,3,employed,,Ana,Silva,,",
            "C-0002,1980-01-01,FR,Bretagne,3,employed,,B\x1ben,Smith,,",
            "C-0003,1980-01-01,FR,Bretagne,3,employed,,Cat,Jones,,",
        ]
    )
    r = await post_csv(accounts, text)
    assert r.status_code == 200, r.text
    assert r.json()["opened"] == 1
    assert [(x["line"], x["error"].split(":")[0]) for x in r.json()["rejected"]] == [
        (2, "region"),
        (3, "given_name"),
    ]


async def test_a_value_the_database_refuses_rejects_only_its_line(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should PostgreSQL refuse a line that passed validation, the batch is redone line by
    line: the other lines of the batch are opened, that one is reported."""
    from sqlalchemy import text as sql

    from services.accounts.store import accounts as store

    insert_accounts, insert_account = store.insert_accounts, store.insert_account

    async def refuse_bulk(session: Any, rows: list[dict[str, Any]]) -> Any:
        if any(r["region"] == "Refused" for r in rows):
            await session.execute(sql("SELECT 1 / 0"))  # a real data exception (22012)
        return await insert_accounts(session, rows)

    async def refuse_one(session: Any, row: dict[str, Any], key: Any) -> bool:
        if row["region"] == "Refused":
            await session.execute(sql("SELECT 1 / 0"))
        return await insert_account(session, row, key)

    monkeypatch.setattr(store, "insert_accounts", refuse_bulk)
    monkeypatch.setattr(store, "insert_account", refuse_one)
    text = "\n".join(
        [
            HEADER,
            "D-0001,1980-01-01,FR,Bretagne,3,employed,,Ana,Silva,,",
            "D-0002,1980-01-01,FR,Refused,3,employed,,Ben,Smith,,",
            "D-0003,1980-01-01,FR,Bretagne,3,employed,,Cat,Jones,,",
        ]
    )
    r = await post_csv(accounts, text)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["opened"], report["existing"]) == (2, 0)
    assert [x["line"] for x in report["rejected"]] == [3]
    assert "database" in report["rejected"][0]["error"]
    assert await accounts.count("accounts") == 2
    assert await accounts.count("personal_keys") == 2
    assert await accounts.count("outbox") == 2

    again = await post_csv(accounts, text)
    assert (again.json()["opened"], again.json()["existing"]) == (0, 2)
    assert await accounts.count("outbox") == 2


async def test_two_imports_of_one_file_at_once_open_each_person_once(accounts: Accounts) -> None:
    """Two desks load the same people at once, in another order: no deadlock, no person
    twice."""
    gen = generate(lines=3_000, bad_count=60, seed=3)
    header, *rows = gen.text.splitlines()
    random.Random(5).shuffle(rows)
    shuffled = "\n".join([header, *rows]) + "\n"
    first, second = await asyncio.gather(post_csv(accounts, gen.text), post_csv(accounts, shuffled))
    assert first.status_code == second.status_code == 200, (first.text[:300], second.text[:300])
    opened = first.json()["opened"] + second.json()["opened"]
    existing = first.json()["existing"] + second.json()["existing"]
    assert opened == gen.good_lines
    # which of two lines with one national id counts as the duplicate depends on the order;
    # each person is opened once all the same
    assert existing == gen.good_lines
    assert await accounts.count("accounts") == gen.good_lines
    assert await accounts.count("outbox") == gen.good_lines
