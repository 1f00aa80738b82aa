"""Sessions live on the server: a live one signs its person in, an expired or closed one
does not, and a form's CSRF token belongs to one session only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ila.registry import definition
from services.portal.sessions import (
    SESSION_HOURS,
    check_csrf,
    close_session,
    load_session,
    open_session,
)
from shared.problems import Forbidden
from tests.support import running_app, settings_for

pytestmark = pytest.mark.postgres


async def test_a_session_signs_in_until_it_expires_or_closes(db_url: str) -> None:
    async with running_app([definition("portal")], settings_for(db_url), run_jobs=False) as (
        app,
        _,
    ):
        rt = app.state.runtimes["portal"]
        now = datetime(2026, 3, 1, 9, tzinfo=UTC)
        account = uuid.uuid4()
        first = await open_session(rt, account, now)
        second = await open_session(rt, account, now)
        signed = await load_session(rt, first, now + timedelta(hours=1))
        assert signed is not None and signed.account_id == account
        other = await load_session(rt, second, now)
        assert other is not None and other.csrf_token != signed.csrf_token
        check_csrf(signed, signed.csrf_token)
        for wrong in (None, "", other.csrf_token):
            with pytest.raises(Forbidden):
                check_csrf(signed, wrong)
        assert await load_session(rt, first, now + timedelta(hours=SESSION_HOURS)) is None
        assert await load_session(rt, "no-such-session", now) is None
        await close_session(rt, second)
        assert await load_session(rt, second, now) is None
