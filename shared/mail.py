"""Messages to people, one per fact, sent by SMTP.

A service that owns a person's contact queues a message in its own ``outgoing_mail`` table
(:func:`shared.kernel_ddl.mail_ddl`) in the transaction of the fact it tells (a consumer's
handler, a job's scan): the row's ``fact_key`` is unique (``"<kind>:<entity id>[:<deadline>]"``),
so a fact told twice (an event redelivered or replayed from the dead letters, a job that
scans again) queues one message. Events never carry an address or a name: the service
resolves the recipient when it queues, and the body holds only what the recipient needs.

The service's sender job (:func:`sender_job`) sends due rows: each in its own transaction,
locked, sent, marked ``sent``; a row marked sent is never picked again. A run's messages go
over one SMTP connection (:class:`Connection`). A failed send stays
pending and is tried again after ``mail_retry_base_seconds * 2**(attempts-1)`` (capped). The
``Message-ID`` is derived from the row, so in the one case where a send succeeded but the
mark was lost (the database failed in between) the second copy carries the same id.

Erasing a person (:func:`erase_person`) blanks the address, subject, body and last error of
all their rows (pending ones become ``erased`` and are never sent); the fact keys stay, so a
late redelivery queues nothing new.

Texts come from Jinja2 templates with the ``jinja2.ext.i18n`` extension (strings in
``_()``), rendered with the recipient's language's translations from the gettext catalogues
of :mod:`shared.i18n` (``shared/locale``, the pages' catalogues; ``make messages`` extracts
the templates' strings with the pages').
"""

from __future__ import annotations

import asyncio
import functools
import gettext
import logging
import smtplib
import socket
import ssl
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import i18n
from shared.clock import Clock
from shared.db import fetch_rows, transaction
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.service import Job, ServiceRuntime

log = logging.getLogger(__name__)

LANGUAGES = i18n.LOCALES
DEFAULT_LANGUAGE = i18n.DEFAULT_LOCALE


@dataclass(frozen=True)
class Outgoing:
    """One message to queue. ``person``: whose message it is (an account or provider id)."""

    fact_key: str
    kind: str
    person: str
    recipient: str
    language: str
    subject: str
    body: str


async def queue(session: AsyncSession, schema: str, message: Outgoing) -> bool:
    """Queue ``message`` unless its fact has a message already; True when queued."""
    return await queue_many(session, schema, [message]) == 1


async def queue_many(session: AsyncSession, schema: str, messages: Sequence[Outgoing]) -> int:
    """:func:`queue` of many messages in one statement (a fact twice: its first message);
    how many were queued."""
    if not messages:
        return 0
    rows = await fetch_rows(
        session,
        f'INSERT INTO "{schema}".outgoing_mail (message_id, fact_key, kind, person, '
        "recipient, language, subject, body) SELECT i, f, k, p, t, l, s, b FROM unnest("
        "CAST(:id AS uuid[]), "
        "CAST(:fact AS text[]), CAST(:kind AS text[]), CAST(:person AS text[]), "
        "CAST(:to AS text[]), CAST(:lang AS text[]), CAST(:subject AS text[]), "
        "CAST(:body AS text[])) WITH ORDINALITY AS m(i, f, k, p, t, l, s, b, n) "
        "ORDER BY n ON CONFLICT (fact_key) DO NOTHING RETURNING message_id",
        {
            "id": [uuid.uuid4() for _ in messages],
            "fact": [m.fact_key for m in messages],
            "kind": [m.kind for m in messages],
            "person": [m.person for m in messages],
            "to": [m.recipient for m in messages],
            "lang": [m.language for m in messages],
            "subject": [m.subject for m in messages],
            "body": [m.body for m in messages],
        },
    )
    return len(rows)


async def has_message(session: AsyncSession, schema: str, fact_key: str) -> bool:
    """Whether the fact has a message already (a scan skips rendering it again)."""
    return bool(await told(session, schema, [fact_key]))


async def told(session: AsyncSession, schema: str, fact_keys: Sequence[str]) -> set[str]:
    """The facts of ``fact_keys`` that have a message already (:func:`has_message` of many)."""
    if not fact_keys:
        return set()
    rows = await fetch_rows(
        session,
        f'SELECT fact_key FROM "{schema}".outgoing_mail WHERE fact_key = ANY(:f)',
        {"f": list(fact_keys)},
    )
    return {r["fact_key"] for r in rows}


async def erase_person(session: AsyncSession, schema: str, person: str) -> int:
    """Forget the address and texts of every message to ``person``; how many rows."""
    result = await session.execute(
        text(
            f'UPDATE "{schema}".outgoing_mail SET recipient = NULL, subject = NULL, '
            "body = NULL, last_error = NULL, "
            "status = CASE WHEN status = 'pending' THEN 'erased' ELSE status END "
            "WHERE person = :p"
        ),
        {"p": person},
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- texts ------------------------------------------------------------------------------------


def language_of(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


class Templates:
    """Plain-text message templates in ``directory``: ``<kind>.txt`` whose first line is the
    subject and the rest (after one blank line) the body. ``translations`` gives the
    gettext translations of a language (default: the catalogues of :mod:`shared.i18n`)."""

    def __init__(
        self,
        directory: Path,
        translations: Callable[[str], gettext.NullTranslations] | None = None,
    ) -> None:
        self.directory = directory
        self.translations = translations or i18n.translations
        self._envs: dict[str, jinja2.Environment] = {}

    def _env(self, language: str) -> jinja2.Environment:
        env = self._envs.get(language)
        if env is None:
            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(self.directory),
                extensions=["jinja2.ext.i18n"],
                autoescape=False,  # plain text, never HTML
                undefined=jinja2.StrictUndefined,
                keep_trailing_newline=True,
            )
            env.install_gettext_translations(  # type: ignore[attr-defined]
                self.translations(language), newstyle=True
            )
            self._envs[language] = env
        return env

    def render(self, kind: str, language: str, **context: Any) -> tuple[str, str]:
        """The subject and body of a ``kind`` message in ``language``."""
        language = language_of(language)
        rendered = self._env(language).get_template(f"{kind}.txt").render(**context)
        subject, _, body = rendered.strip().partition("\n")
        return subject.strip(), body.strip() + "\n"


# --- sending ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        if not settings.smtp_host:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=(
                settings.smtp_password.get_secret_value() if settings.smtp_password else None
            ),
            timeout=settings.smtp_timeout_seconds,
        )


@dataclass(frozen=True)
class Backoff:
    base_seconds: float = 30.0
    max_seconds: float = 6 * 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Backoff:
        return cls(settings.mail_retry_base_seconds, settings.mail_retry_max_seconds)

    def delay(self, attempts: int) -> timedelta:
        """How long to wait after the ``attempts``-th failed send."""
        seconds = self.base_seconds * 2 ** min(max(attempts - 1, 0), 30)
        return timedelta(seconds=min(seconds, self.max_seconds))


def email_message(smtp: SmtpConfig, row: Any, now: datetime) -> EmailMessage:
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = row.recipient
    message["Subject"] = row.subject
    message["Date"] = format_datetime(now)
    domain = smtp.sender.rpartition("@")[2].strip(">") or "ila.invalid"
    message["Message-ID"] = f"<{row.message_id}@{domain}>"
    message["X-ILA-Kind"] = row.kind
    message.set_content(row.body)  # (replaces every Content-* header: set the language after)
    message["Content-Language"] = row.language
    return message


@functools.cache
def _local_hostname() -> str:
    """The name this host gives in ``EHLO`` (``smtplib`` would look it up, a reverse lookup
    of the host's name, for every connection)."""
    return socket.getfqdn()


class Connection:
    """One SMTP connection, opened for the first message and kept for the next ones of a
    sender's run (blocking: its methods run in a thread). A message that fails closes it:
    the next one opens a new connection."""

    def __init__(self, smtp: SmtpConfig) -> None:
        self.smtp = smtp
        self._client: smtplib.SMTP | None = None

    def _open(self) -> smtplib.SMTP:
        smtp = self.smtp
        client = smtplib.SMTP(
            smtp.host, smtp.port, local_hostname=_local_hostname(), timeout=smtp.timeout
        )
        try:
            if smtp.starttls:
                client.starttls(context=ssl.create_default_context())
            if smtp.username:
                client.login(smtp.username, smtp.password or "")
        except BaseException:
            client.close()
            raise
        return client

    def send(self, message: EmailMessage) -> None:
        """Send one message; a connection the server closed since the last one is opened
        again once (a relay's idle timeout is not a failed message)."""
        reused = self._client is not None
        try:
            if self._client is None:
                self._client = self._open()
            try:
                self._client.send_message(message)
            except smtplib.SMTPServerDisconnected:
                if not reused:
                    raise
                self.close()
                self._client = self._open()
                self._client.send_message(message)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()


async def send_due(
    sessions: async_sessionmaker[AsyncSession],
    schema: str,
    smtp: SmtpConfig,
    *,
    now: datetime,
    backoff: Backoff | None = None,
    batch: int = 50,
) -> int:
    """Send the messages due at ``now``; how many were sent."""
    backoff = backoff or Backoff()
    table = f'"{schema}".outgoing_mail'
    async with transaction(sessions) as session:
        due = (
            await session.execute(
                text(
                    f"SELECT message_id FROM {table} WHERE status = 'pending' "
                    "AND next_attempt_at <= :now ORDER BY next_attempt_at, created_at LIMIT :n"
                ),
                {"now": now, "n": batch},
            )
        ).scalars()
        ids = list(due)
    sent = 0
    connection = Connection(smtp)
    try:
        for message_id in ids:
            sent += await _send_one(sessions, table, connection, message_id, now, backoff)
    finally:
        await asyncio.to_thread(connection.close)
    return sent


async def _send_one(
    sessions: async_sessionmaker[AsyncSession],
    table: str,
    connection: Connection,
    message_id: Any,
    now: datetime,
    backoff: Backoff,
) -> int:
    """Send the message ``message_id`` if it is still due (1), else leave it (0)."""
    smtp = connection.smtp
    async with transaction(sessions) as session:
        row = (
            await session.execute(
                text(
                    "SELECT message_id, kind, recipient, language, subject, body, attempts "
                    f"FROM {table} WHERE message_id = :id AND status = 'pending' "
                    "AND next_attempt_at <= :now FOR UPDATE SKIP LOCKED"
                ),
                {"id": message_id, "now": now},
            )
        ).one_or_none()
        if row is None:
            return 0  # sent, erased or taken by another sender meanwhile
        try:
            await asyncio.to_thread(connection.send, email_message(smtp, row, now))
        except (smtplib.SMTPException, OSError) as exc:
            attempts = row.attempts + 1
            log.warning(
                "sending %s %s failed (attempt %d): %s", row.kind, message_id, attempts, exc
            )
            await session.execute(
                text(
                    f"UPDATE {table} SET attempts = :a, last_error = :e, "
                    "next_attempt_at = :next WHERE message_id = :id"
                ),
                {
                    "id": message_id,
                    "a": attempts,
                    "e": f"{type(exc).__name__}: {exc}"[:500],
                    "next": now + backoff.delay(attempts),
                },
            )
            return 0
        await session.execute(
            text(
                f"UPDATE {table} SET status = 'sent', sent_at = :now, attempts = attempts + 1, "
                "last_error = NULL WHERE message_id = :id"
            ),
            {"id": message_id, "now": now},
        )
    return 1


def sender_job(clock_of: Callable[[ServiceRuntime], Clock] | None = None) -> Job:
    """The service's sender: every ``mail_poll_seconds``, send what is due. Without an SMTP
    host the messages wait (and the job says so once)."""

    async def run(rt: ServiceRuntime) -> None:
        smtp = SmtpConfig.from_settings(rt.settings)
        if smtp is None:
            log.warning("%s: no ILA_SMTP_HOST, messages wait in outgoing_mail", rt.name)
            return
        backoff = Backoff.from_settings(rt.settings)
        while True:
            now = clock_of(rt).now() if clock_of else Clock().now()
            try:
                await send_due(rt.sessions, rt.name, smtp, now=now, backoff=backoff)
            except Exception:
                log.exception("%s: the mail sender failed; trying again", rt.name)
            await asyncio.sleep(rt.settings.mail_poll_seconds)

    return run


__all__ = [
    "Backoff",
    "Outgoing",
    "SmtpConfig",
    "Templates",
    "erase_person",
    "has_message",
    "queue",
    "send_due",
    "sender_job",
]
