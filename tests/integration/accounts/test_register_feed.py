"""The population register's feed: every eligible person opened exactly once, the accounts of
the dead and of those past working age closed, a second run changes nothing, a run killed
mid-way and resumed ends as one clean run, and the report lists every record's outcome."""

from __future__ import annotations

import asyncio
import csv
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from services.accounts.deps import AccountsComponents
from services.accounts.handlers import register as feed_handlers
from services.accounts.handlers.register_file import run_file
from services.accounts.handlers.register_report import write_report
from services.accounts.store import register as feed_store
from shared.outbox import EventContext
from shared.service import ServiceRuntime, components_of
from tests.integration.accounts.register_feed_data import (
    AGENCIES,
    Feed,
    generate,
    open_earlier,
)
from tests.integration.support.accounts import Accounts, event_type, serve_accounts

pytestmark = pytest.mark.postgres


@pytest.fixture
async def service(db_url: str) -> AsyncIterator[Accounts]:
    async with serve_accounts(db_url, register_agencies=AGENCIES) as accounts:
        yield accounts


def runtime(accounts: Accounts) -> tuple[ServiceRuntime, AccountsComponents]:
    rt: ServiceRuntime = accounts.app.state.runtimes["accounts"]
    return rt, components_of(rt, AccountsComponents)


async def counts(accounts: Accounts) -> dict[str, int]:
    """What a feed may change: accounts, data keys and the lifecycle events staged."""
    return {
        "accounts": await accounts.count("accounts"),
        "keys": await accounts.count("personal_keys"),
        "closed": await accounts.count("accounts", "status = 'closed'"),
        "opened_events": await accounts.count("outbox", "type = :t", t=event_type("AccountOpened")),
        "closed_events": await accounts.count("outbox", "type = :t", t=event_type("AccountClosed")),
        "outbox": await accounts.count("outbox"),
    }


async def apply_file(
    accounts: Accounts, path: Path, feed_id: uuid.UUID | None = None, **kwargs: Any
) -> feed_store.FeedRun:
    """A run of the feed file (a new one, or ``feed_id`` resumed from its checkpoint)."""
    rt, c = runtime(accounts)
    rules = feed_handlers.FeedRules.from_settings(rt.settings)
    run = await feed_handlers.start(rt.uow, c.accounts, feed_id or uuid.uuid4(), str(path), None)
    return await run_file(
        c.accounts, rt.uow, rules, path, run, EventContext.new(actor="test:register"), **kwargs
    )


async def report_of(accounts: Accounts, feed_id: uuid.UUID, path: Path) -> list[dict[str, str]]:
    rt, _ = runtime(accounts)
    async with rt.sessions() as session:
        with path.open("w", encoding="utf-8", newline="") as out:
            await write_report(feed_store.stream_outcomes(session, feed_id), out)
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def check_report(report: list[dict[str, str]], feed: Feed, *, again: bool = False) -> None:
    """Each record listed once, by line, with the outcome it must have (on a second run,
    what was opened or closed is ``existing``)."""
    by_line = {int(r["position"]): r for r in report}
    assert len(by_line) == len(report) == len(feed.expected)
    assert set(by_line) == set(feed.expected)
    wrong = []
    for line, (outcome, word) in feed.expected.items():
        row = by_line[line]
        if again and outcome in ("opened", "closed"):
            outcome, word = "existing", ("closed" if outcome == "closed" else None)
        if row["outcome"] != outcome or (word is not None and word not in row["reason"]):
            wrong.append((line, outcome, word, row))
    assert not wrong, wrong[:10]


async def setup_feed(accounts: Accounts, n: int) -> Feed:
    rt, c = runtime(accounts)
    feed = generate(n, c.clock.now().date())
    await open_earlier(c, rt.uow, feed)
    return feed


async def run_twice(accounts: Accounts, n: int, tmp_path: Path, chunk_size: int) -> None:
    feed = await setup_feed(accounts, n)
    path = feed.write(tmp_path / "register.jsonl")
    before = await counts(accounts)
    assert before["accounts"] == len(feed.earlier) and before["closed"] == 0

    started = time.perf_counter()
    run = await apply_file(accounts, path, chunk_size=chunk_size)
    first = time.perf_counter() - started
    after = await counts(accounts)
    opened, closed = feed.count("opened"), feed.count("closed")
    assert run.counts() == {o: feed.count(o) for o in run.counts()}
    assert after["accounts"] - before["accounts"] == opened
    assert after["keys"] - before["keys"] == opened
    assert after["opened_events"] - before["opened_events"] == opened
    assert after["closed"] == after["closed_events"] == closed
    assert after["outbox"] - before["outbox"] == opened + closed
    assert run.finished_at is not None and run.checkpoint == len(feed.lines)
    check_report(await report_of(accounts, run.feed_id, tmp_path / "first.csv"), feed)
    # every eligible person exactly once: one account per national id, and each opened once
    assert (
        await accounts.scalar(
            "SELECT count(*) FROM (SELECT national_id_hash FROM accounts.accounts "
            "GROUP BY 1 HAVING count(*) > 1) d"
        )
        == 0
    )

    started = time.perf_counter()
    second = await apply_file(accounts, path, chunk_size=chunk_size)
    again = time.perf_counter() - started
    assert await counts(accounts) == after
    assert second.opened == second.closed == 0
    second_report = await report_of(accounts, second.feed_id, tmp_path / "second.csv")
    check_report(second_report, feed, again=True)
    print(f"\nregister feed of {n} records: first run {first:.1f}s, second {again:.1f}s")
    assert first < 240 and again < 240


async def test_a_feed_opens_each_eligible_person_once(service: Accounts, tmp_path: Path) -> None:
    await run_twice(service, 2_000, tmp_path, chunk_size=250)


@pytest.mark.slow
async def test_a_feed_of_100000_records(service: Accounts, tmp_path: Path) -> None:
    await run_twice(service, 100_000, tmp_path, chunk_size=1000)


class Crash(Exception):
    pass


async def test_a_run_killed_midway_resumes_to_the_same_result(
    service: Accounts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = await setup_feed(service, 2_000)
    path = feed.write(tmp_path / "register.jsonl")
    feed_id = uuid.uuid4()

    # killed after three chunks committed
    def crash_after_three(line: int) -> None:
        crash_after_three.chunks += 1  # type: ignore[attr-defined]
        if crash_after_three.chunks == 3:  # type: ignore[attr-defined]
            raise Crash

    crash_after_three.chunks = 0  # type: ignore[attr-defined]
    with pytest.raises(Crash):
        await apply_file(service, path, feed_id, chunk_size=200, progress=crash_after_three)
    rt, _ = runtime(service)
    async with rt.sessions() as session:
        run = await feed_store.get(session, feed_id)
    assert run is not None and run.finished_at is None
    assert 3 * 200 <= run.checkpoint < 4 * 200 + 3  # three chunks of records, blank lines too
    assert run.last_record_id is not None
    assert sum(run.counts().values()) == 600

    # killed inside the fifth chunk's transaction, before it committed: nothing of it stays
    record = feed_store.record
    calls = 0

    async def crash_in_fifth(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise Crash
        await record(*args, **kwargs)

    monkeypatch.setattr(feed_store, "record", crash_in_fifth)
    with pytest.raises(Crash):
        await apply_file(service, path, feed_id, chunk_size=200)
    monkeypatch.setattr(feed_store, "record", record)
    async with rt.sessions() as session:
        again = await feed_store.get(session, feed_id)
    assert again is not None and sum(again.counts().values()) == 800
    opened_so_far = await service.count("accounts") - len(feed.earlier)
    assert opened_so_far == again.opened

    # resumed: ends exactly as one clean run
    before_resume = await counts(service)
    done = await apply_file(service, path, feed_id, chunk_size=200)
    assert done.feed_id == feed_id and done.finished_at is not None
    assert done.counts() == {o: feed.count(o) for o in done.counts()}
    check_report(await report_of(service, feed_id, tmp_path / "report.csv"), feed)
    final = await counts(service)
    assert final["accounts"] - len(feed.earlier) == feed.count("opened")
    assert final["opened_events"] - len(feed.earlier) == feed.count("opened")
    assert final["closed_events"] == final["closed"] == feed.count("closed")
    assert final["accounts"] > before_resume["accounts"]

    # a finished run resumed does nothing more
    assert (await apply_file(service, path, feed_id, chunk_size=200)).counts() == done.counts()
    assert await counts(service) == final


async def test_closure_of_the_dead_and_of_those_past_working_age(service: Accounts) -> None:
    _, c = runtime(service)
    on = c.clock.now().date()
    young = await service.open(national_id="FR-CL-0001", birth_date="1980-03-01")
    suspended = await service.open(national_id="FR-CL-0002", birth_date="1980-03-01")
    r = await service.client.post(
        f"/v1/accounts/{suspended}/suspend",
        json={"reason_code": "eligibility_review"},
        headers=service.agency,
    )
    assert r.status_code == 200, r.text
    base = {"country": "FR", "region": "Bretagne", "given_name": "A", "family_name": "B"}
    records = [
        {**base, "record_id": "a", "national_id": "FR-CL-0001", "birth_date": "1950-03-01"},
        {
            **base,
            "record_id": "b",
            "national_id": "fr-cl- 0002",  # spaces and case do not matter
            "birth_date": "1980-03-01",
            "death_date": on.isoformat(),
        },
    ]
    reply = await post_batch(service, uuid.uuid4(), 0, records, final=True)
    assert [(o["outcome"], o["reason"]) for o in reply["outcomes"]] == [
        ("closed", "end_of_eligibility"),
        ("closed", "deceased"),
    ]
    for account_id, code in ((young, "end_of_eligibility"), (suspended, "deceased")):
        got = await service.client.get(f"/v1/accounts/{account_id}", headers=service.agency)
        assert got.json()["status"] == "closed"
        assert got.json()["status_reason_code"] == code
        assert await service.events_of(account_id, "AccountClosed") == [
            {"account_id": account_id, "reason_code": code}
        ]


# --- over HTTP --------------------------------------------------------------------------


async def post_batch(
    accounts: Accounts,
    feed_id: uuid.UUID,
    after: int,
    records: list[Any],
    expect: int = 200,
    **extra: Any,
) -> Any:
    headers = {"Authorization": accounts.register_token()}
    body = {"feed_id": str(feed_id), "after": after, "records": records, **extra}
    r = await accounts.client.post(
        "/v1/accounts/register-feed", json=body, headers=headers, timeout=120
    )
    assert r.status_code == expect, r.text[:2000]
    return r.json()


async def test_the_feed_over_http(service: Accounts) -> None:
    feed = await setup_feed(service, 1_200)
    records, expected = feed.records(), feed.expected_by_record()
    feed_id = uuid.uuid4()
    outcomes: list[Any] = []
    for after in range(0, 600, 300):
        reply = await post_batch(service, feed_id, after, records[after : after + 300])
        assert reply["checkpoint"] == after + 300 and not reply["finished"]
        outcomes += reply["outcomes"]
    state = await counts(service)

    # the same batch again (a lost reply): the same answer, nothing done again
    replay = await post_batch(service, feed_id, 300, records[300:600])
    assert replay["outcomes"] == outcomes[300:]
    # overlapping the checkpoint: only the records after it are applied
    overlap = await post_batch(service, feed_id, 500, records[500:800])
    assert overlap["outcomes"][:100] == outcomes[500:600]
    outcomes += overlap["outcomes"][100:]
    # a gap: refused, with the checkpoint to resume from
    gap = await post_batch(service, feed_id, 900, records[900:], expect=409)
    assert gap["code"] == "feed_gap" and gap["checkpoint"] == 800
    last = await post_batch(service, feed_id, 800, records[800:], final=True)
    outcomes += last["outcomes"]
    assert last["finished"] and last["checkpoint"] == len(records)
    assert [o["position"] for o in outcomes] == list(range(1, len(records) + 1))
    got = [(o["outcome"], o["reason"]) for o in outcomes]
    for (outcome, reason), (want, word) in zip(got, expected, strict=True):
        assert outcome == want and (word is None or word in (reason or "")), (got, want, word)
    assert (await counts(service))["accounts"] > state["accounts"]

    after_run = await counts(service)
    finished = await post_batch(service, feed_id, len(records), records[:1], expect=409)
    assert finished["code"] == "feed_finished"
    headers = {"Authorization": service.register_token()}
    run = await service.client.get(f"/v1/accounts/register-feed/{feed_id}", headers=headers)
    assert run.json()["counts"] == {o: feed.count(o) for o in run.json()["counts"]}
    report = await service.client.get(
        f"/v1/accounts/register-feed/{feed_id}/report", headers=headers
    )
    assert report.headers["content-type"].startswith("text/csv")
    assert len(report.text.splitlines()) == len(records) + 1

    # a second run over HTTP changes nothing
    second = await post_batch(service, uuid.uuid4(), 0, records, final=True)
    assert second["counts"]["opened"] == second["counts"]["closed"] == 0
    assert await counts(service) == after_run


@pytest.mark.parametrize(
    "body",
    [
        {"after": 0, "records": []},
        {"feed_id": "not-a-uuid", "after": 0, "records": []},
        {"feed_id": str(uuid.uuid4()), "after": -1, "records": []},
        {"feed_id": str(uuid.uuid4()), "after": 0, "records": {}},
        {"feed_id": str(uuid.uuid4()), "after": 0, "records": [], "feed_date": "2999-01-01"},
        {"feed_id": str(uuid.uuid4()), "after": 0, "records": [], "feed_date": "01/02/2020"},
        {"feed_id": str(uuid.uuid4()), "after": 0, "records": [{}] * 5001},
        {"feed_id": str(uuid.uuid4()), "after": 0, "records": [], "surplus": 1},
    ],
    ids=[
        "no-feed-id",
        "bad-feed-id",
        "negative-after",
        "records-not-a-list",
        "future-date",
        "bad-date",
        "too-many",
        "unknown-field",
    ],
)
async def test_a_bad_batch_is_a_problem(module_accounts: Accounts, body: dict[str, Any]) -> None:
    r = await module_accounts.client.post(
        "/v1/accounts/register-feed",
        json=body,
        headers={"Authorization": module_accounts.register_token()},
    )
    assert r.status_code == 422, r.text[:500]
    assert r.headers["content-type"] == "application/problem+json"
    assert await module_accounts.count("register_feeds") == 0


@pytest.mark.parametrize("role", ["agency", "admin", "auditor", "learner", "portal"])
async def test_only_the_register_sends_the_feed(module_accounts: Accounts, role: str) -> None:
    from tests.support import bearer

    extra = {"agency_id": "pes-fr"} if role == "agency" else {}
    headers = bearer(module_accounts.settings, role, **extra)  # type: ignore[arg-type]
    body = {"feed_id": str(uuid.uuid4()), "after": 0, "records": []}
    r = await module_accounts.client.post("/v1/accounts/register-feed", json=body, headers=headers)
    assert r.status_code == 403, r.text
    path = f"/v1/accounts/register-feed/{uuid.uuid4()}"
    r = await module_accounts.client.get(path, headers=headers)
    assert r.status_code == 403, r.text


# --- the command line -------------------------------------------------------------------


async def test_cli_feed_with_resume(
    service: Accounts, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ila accounts feed FILE``: killed mid-way, ``--resume`` finishes the same run; the
    report lists every record. The command runs its own event loop, in a worker thread."""
    from ila.cli import app
    from shared.settings import get_settings

    feed = await setup_feed(service, 1_000)
    path = feed.write(tmp_path / "register.jsonl")
    monkeypatch.setenv("ILA_DATABASE_URL", db_url)
    monkeypatch.setenv("ILA_LOG_JSON", "false")
    monkeypatch.setenv("ILA_REGISTER_AGENCIES", '{"FR": "pes-fr"}')
    get_settings.cache_clear()
    runner = CliRunner()

    async def ila(*args: str) -> Any:
        return await asyncio.to_thread(runner.invoke, app, list(args))

    record = feed_store.record
    calls = 0

    async def crash_in_third(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise Crash
        await record(*args, **kwargs)

    try:
        monkeypatch.setattr(feed_store, "record", crash_in_third)
        killed = await ila("accounts", "feed", str(path), "--chunk-size", "200")
        assert killed.exit_code != 0 and isinstance(killed.exception, Crash), killed.output
        monkeypatch.setattr(feed_store, "record", record)

        resumed = await ila("accounts", "feed", str(path), "--chunk-size", "200", "--resume")
        assert resumed.exit_code == 0, (resumed.output, resumed.exception)
        assert "resuming run" in resumed.output, resumed.output
        assert f"opened {feed.count('opened')}" in resumed.output, resumed.output
        assert f"closed {feed.count('closed')}" in resumed.output, resumed.output
        with (tmp_path / "register.jsonl.report.csv").open(encoding="utf-8", newline="") as f:
            check_report(list(csv.DictReader(f)), feed)
        assert await service.count("register_feeds") == 1
        run_id = await service.scalar("SELECT feed_id FROM accounts.register_feeds")
        day_before = (feed.on - timedelta(days=1)).isoformat()
        other = await ila(
            "accounts", "feed", str(path), "--feed-id", str(run_id), "--date", day_before
        )
        assert other.exit_code == 1 and "applies the feed of" in other.output, other.output

        state = await counts(service)
        again = await ila("accounts", "feed", str(path), "--report", str(tmp_path / "r2.csv"))
        assert again.exit_code == 0, (again.output, again.exception)
        assert "opened 0" in again.output and "closed 0" in again.output, again.output
        assert await counts(service) == state

        future = await ila("accounts", "feed", str(path), "--date", "2999-01-01")
        assert future.exit_code != 0
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    "table", [{"France": "pes-fr"}, {"FR": "no spaces"}, {"fr:Bretagne": "pes-fr"}]
)
def test_a_bad_table_of_agencies_is_refused(table: dict[str, str]) -> None:
    from pydantic import ValidationError

    from shared.settings import Settings

    with pytest.raises(ValidationError, match="ILA_REGISTER_AGENCIES"):
        Settings(register_agencies=table)
    assert Settings(register_agencies={"FR:Île-de-France": "ft-idf", "FR": "ft"})
