"""A batch handler's rounds (each key once per round, each key's order kept) and the answer
to a request whose database failure is transient (503, try again; nothing changed)."""

from __future__ import annotations

import asyncpg.exceptions as pg
import httpx
from fastapi import FastAPI

from shared.inbox_batch import rounds
from shared.problems import install_problem_handlers
from tests.unit.support import wrapped_by_sqlalchemy


def test_rounds_keep_each_keys_order_and_never_repeat_a_key() -> None:
    keys = ["a", "b", "a", "c", "a", "b", "d"]
    got = rounds(keys)
    assert got == [[0, 1, 3, 6], [2, 5], [4]]
    for positions in got:
        assert len({keys[i] for i in positions}) == len(positions)
    for key in set(keys):
        order = [i for positions in got for i in positions if keys[i] == key]
        assert order == sorted(order)
    assert rounds([]) == []
    assert rounds(["x", "y"]) == [[0, 1]]


async def test_a_transient_database_failure_answers_503_and_a_permanent_one_500() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/lost")
    async def lost() -> None:
        raise wrapped_by_sqlalchemy(
            pg.ConnectionDoesNotExistError("connection was closed in the middle")
        )

    @app.get("/broken")
    async def broken() -> None:
        raise wrapped_by_sqlalchemy(pg.UniqueViolationError("duplicate key"))

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/lost")
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "1"
        assert r.json()["type"].endswith("unavailable")
        assert (await client.get("/broken")).status_code == 500
