"""The development SMTP sink: a local SMTP server (aiosmtpd) that accepts every message and
delivers none, so that ``ila run`` can send the services' e-mails somewhere visible.

Messages are kept in memory (the page ``GET /dev/mail`` of ``ila run`` shows them) and
written to ``<data_dir>/mail/*.eml`` (``ila mail list`` reads those). Development only:
``ila run`` does not start it when ``ILA_SMTP_HOST`` is set or ``ILA_ENV=production``.
"""

from __future__ import annotations

import email
import email.policy
import html
import json
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated, Any

import typer
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse

from shared.settings import Settings, get_settings


@dataclass(frozen=True)
class Received:
    """One message the sink accepted."""

    received_at: datetime
    mail_from: str
    recipients: tuple[str, ...]
    raw: bytes
    peer: str = ""  # the sending connection's address ("host:port"), one per SMTP session

    @property
    def message(self) -> EmailMessage:
        parsed: EmailMessage = email.message_from_bytes(self.raw, policy=email.policy.default)
        return parsed

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    def header(self, name: str) -> str:
        return str(self.message[name] or "")

    def summary(self) -> dict[str, Any]:
        return {
            "received_at": self.received_at.isoformat(),
            "from": self.mail_from,
            "to": list(self.recipients),
            "subject": self.subject,
            "kind": self.header("X-ILA-Kind"),
            "language": self.header("Content-Language"),
            "message_id": self.header("Message-ID"),
            "body": self.body,
        }


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.sink.add(
            Received(
                datetime.now(UTC),
                str(envelope.mail_from),
                tuple(str(r) for r in envelope.rcpt_tos),
                bytes(envelope.original_content or envelope.content),
                ":".join(str(part) for part in (session.peer or ())[:2]),
            )
        )
        return "250 Message accepted for delivery"


class MailSink:
    """An SMTP server on ``host:port`` (0: a free port) keeping what it receives; with
    ``directory``, each message is written there as ``<n>.eml`` too."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, directory: Path | None = None):
        self.host = host
        self.requested_port = port
        self.directory = directory
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._controller: Any = None

    @property
    def port(self) -> int:
        assert self._controller is not None, "the sink is not started"
        return int(self._controller.port)

    def start(self) -> MailSink:
        from aiosmtpd.controller import Controller

        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        port = self.requested_port or _free_port(self.host)
        self._controller = Controller(
            _Handler(self), hostname=self.host, port=port, ready_timeout=10
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add(self, received: Received) -> None:
        with self._lock:
            self.messages.append(received)
            n = len(self.messages)
        if self.directory is not None:
            stamp = received.received_at.strftime("%Y%m%dT%H%M%S")
            (self.directory / f"{stamp}-{n:05d}.eml").write_bytes(received.raw)

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.messages)


class MailFolder:
    """What a sink running in another process wrote to ``directory`` (``ila run
    --workers``: the sink runs in the first process, the app in the others)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def received(self) -> list[Received]:
        return read_directory(self.directory)


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def read_directory(directory: Path) -> list[Received]:
    """The messages a sink wrote to ``directory`` (oldest first)."""
    found = []
    for path in sorted(directory.glob("*.eml")) if directory.is_dir() else []:
        raw = path.read_bytes()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        found.append(
            Received(
                datetime.fromtimestamp(path.stat().st_mtime, UTC),
                str(parsed["From"] or ""),
                tuple(a.strip() for a in str(parsed["To"] or "").split(",") if a.strip()),
                raw,
            )
        )
    return found


def dev_mail_router(sink: MailSink | MailFolder) -> APIRouter:
    """``GET /dev/mail`` (a page) and ``GET /dev/mail.json``: what the sink received. Only
    ``ila run`` mounts it, and never with ``ILA_ENV=production``."""
    router = APIRouter(include_in_schema=False)

    @router.get("/dev/mail.json")
    async def mail_json() -> JSONResponse:
        return JSONResponse([m.summary() for m in sink.received()])

    @router.get("/dev/mail")
    async def mail_page() -> HTMLResponse:
        items = []
        for m in reversed(sink.received()):
            s = m.summary()
            items.append(
                "<article><h2>{subject}</h2><p>To {to} &middot; {kind} &middot; {lang} "
                "&middot; {at}</p><pre>{body}</pre></article>".format(
                    subject=html.escape(s["subject"]),
                    to=html.escape(", ".join(s["to"])),
                    kind=html.escape(s["kind"]),
                    lang=html.escape(s["language"]),
                    at=html.escape(s["received_at"]),
                    body=html.escape(s["body"]),
                )
            )
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<title>Development mail</title></head><body><main><h1>Development mail "
            f"({len(items)})</h1>{''.join(items) or '<p>No message yet.</p>'}</main>"
            "</body></html>"
        )
        return HTMLResponse(page)

    return router


def start_for(settings: Settings) -> MailSink | None:
    """``ila run``'s sink on 127.0.0.1:``mail_sink_port``, unless an SMTP server is configured
    (``ILA_SMTP_HOST``) or this is production."""
    if settings.smtp_host or settings.env == "production":
        return None
    try:
        import aiosmtpd  # noqa: F401  (a development dependency)
    except ImportError:
        typer.echo("ila: no aiosmtpd (pip install -e '.[dev]'): messages wait unsent", err=True)
        return None
    sink = MailSink("127.0.0.1", settings.mail_sink_port, settings.data_dir / "mail").start()
    typer.echo(
        f"ila: development mail sink on 127.0.0.1:{sink.port}; read it at /dev/mail "
        "or with `ila mail list`"
    )
    return sink


# --- ``ila mail`` -------------------------------------------------------------------------------

mail_app = typer.Typer(help="The development SMTP sink's messages (``ila run`` starts the sink)")


@mail_app.command("list")
def mail_list(
    body: Annotated[bool, typer.Option("--body", help="print each message's text too")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document")] = False,
) -> None:
    """The messages the sink of ``ila run`` received (``<data_dir>/mail``), oldest first."""
    messages = read_directory(get_settings().data_dir / "mail")
    if as_json:
        typer.echo(json.dumps([m.summary() for m in messages], indent=2))
        return
    for m in messages:
        s = m.summary()
        typer.echo(f"{s['received_at']}  {', '.join(s['to'])}  [{s['kind']}/{s['language']}]")
        typer.echo(f"  {s['subject']}")
        if body:
            typer.echo("    " + s["body"].replace("\n", "\n    "))
    if not messages:
        typer.echo("no message")
