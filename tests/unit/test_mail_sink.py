"""The development SMTP sink of ``ila run``: it receives over real SMTP, shows what it
received at /dev/mail and in its directory (``ila mail list``), and never starts in
production or when an SMTP server is configured."""

from __future__ import annotations

import contextlib
import smtplib
import socket
import threading
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from ila.mail_sink import MailSink, dev_mail_router, read_directory, start_for
from shared.mail import Connection, SmtpConfig
from shared.settings import Settings
from tests.support import free_port


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


def _message(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "ila@example.org"
    message["To"] = "learner@example.org"
    message["Subject"] = subject
    message.set_content("body")
    return message


def test_a_run_sends_its_messages_over_one_connection() -> None:
    with MailSink() as sink:
        connection = Connection(SmtpConfig("127.0.0.1", sink.port, "ila@example.org"))
        for n in range(3):
            connection.send(_message(f"message {n}"))
        connection.close()
        got = sink.received()
        assert [m.subject for m in got] == ["message 0", "message 1", "message 2"]
        assert len({m.peer for m in got}) == 1 and got[0].peer


def test_a_connection_the_server_closed_is_opened_again_once() -> None:
    port = free_port()
    with MailSink(port=port) as first:
        connection = Connection(SmtpConfig("127.0.0.1", port, "ila@example.org", timeout=5))
        connection.send(_message("before"))
    with MailSink(port=port) as second:  # the first server went away with the connection
        connection.send(_message("after"))
        connection.close()
    assert [m.subject for m in first.received()] == ["before"]
    assert [m.subject for m in second.received()] == ["after"]


def test_a_failed_connection_raises_and_the_next_message_tries_anew() -> None:
    port = free_port()  # nothing listens there yet
    connection = Connection(SmtpConfig("127.0.0.1", port, "ila@example.org", timeout=5))
    with pytest.raises(OSError):
        connection.send(_message("lost"))
    with MailSink(port=port) as sink:
        connection.send(_message("sent"))
        connection.close()
    assert [m.subject for m in sink.received()] == ["sent"]


def test_a_server_that_keeps_dropping_the_connection_is_tried_again_once_only() -> None:
    port = free_port()
    with MailSink(port=port):
        connection = Connection(SmtpConfig("127.0.0.1", port, "ila@example.org", timeout=5))
        connection.send(_message("before"))
    accepted = []
    with socket.create_server(("127.0.0.1", port)) as server:
        server.settimeout(5)

        def drop_after_ehlo() -> None:  # greets, answers EHLO, then hangs up
            with contextlib.suppress(OSError):
                while True:
                    peer, _ = server.accept()
                    accepted.append(peer)
                    with peer:
                        peer.sendall(b"220 dropping\r\n")
                        peer.recv(1024)
                        peer.sendall(b"250 ok\r\n")

        threading.Thread(target=drop_after_ehlo, daemon=True).start()
        with pytest.raises(smtplib.SMTPServerDisconnected):
            connection.send(_message("after"))
    assert len(accepted) == 1  # the stale connection, then one new one: never a loop
