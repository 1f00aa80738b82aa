"""The development SMTP sink of ``ila run``: it receives over real SMTP, shows what it
received at /dev/mail and in its directory (``ila mail list``), and never starts in
production or when an SMTP server is configured."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

import httpx
from fastapi import FastAPI

from ila.mail_sink import MailSink, dev_mail_router, read_directory, start_for
from shared.settings import Settings


def _send(port: int, subject: str) -> None:
    message = EmailMessage()
    message["From"] = "ila@example.org"
    message["To"] = "learner@example.org"
    message["Subject"] = subject
    message["X-ILA-Kind"] = "proposal_waiting"
    message.set_content("Confirm <before> the deadline.")
    message["Content-Language"] = "de"
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.send_message(message)


async def test_the_sink_keeps_and_shows_what_it_received(tmp_path: Path) -> None:
    with MailSink(directory=tmp_path / "mail") as sink:
        _send(sink.port, "A proposal waits")
        [got] = sink.received()
        assert got.recipients == ("learner@example.org",)
        assert got.subject == "A proposal waits" and got.header("Content-Language") == "de"
        app = FastAPI()
        app.include_router(dev_mail_router(sink))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            page = await c.get("/dev/mail")
            assert page.status_code == 200 and "A proposal waits" in page.text
            assert "&lt;before&gt;" in page.text  # escaped, never markup
            [summary] = (await c.get("/dev/mail.json")).json()
            assert summary["kind"] == "proposal_waiting" and summary["to"] == [got.recipients[0]]
    [on_disk] = read_directory(tmp_path / "mail")
    assert on_disk.subject == "A proposal waits"


def test_no_sink_in_production_or_with_a_real_server(tmp_path: Path) -> None:
    assert start_for(Settings(env="production", data_dir=tmp_path, **_prod())) is None
    assert start_for(Settings(smtp_host="smtp.example.org", data_dir=tmp_path)) is None
    sink = start_for(Settings(mail_sink_port=0, data_dir=tmp_path))
    assert sink is not None
    try:
        _send(sink.port, "hello")
        assert [m.subject for m in read_directory(tmp_path / "mail")] == ["hello"]
    finally:
        sink.stop()


def _prod() -> dict[str, str]:
    secret = "x" * 40
    return {
        "jwt_public_key": "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----",
        "jwt_issuer": "https://id.example.org",
        "national_id_pepper": secret,
        "credential_key_seed": secret + "c",
        "ledger_checkpoint_key": secret + "l",
        "actor_pepper": secret + "a",
        "accounts_kek": "k1:" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    }
