"""The languages of the pages (the registry, /verify, the portal's sign-in, learner pages
and dashboard) and of the e-mails (:class:`shared.mail.Templates` takes
:func:`translations`): gettext catalogues through Babel, the locale chosen per request, and
numbers, money and dates formatted for it.

The API, small on purpose:

- ``LOCALES`` (``("en", "fr", "de")``), ``DEFAULT_LOCALE`` and ``COOKIE`` (``ila_lang``).
- :func:`parse_accept_language` and :func:`negotiate`: an ``Accept-Language`` header read
  as RFC 9110 says (quality values honoured, ``q=0`` excludes, ``fr-CH`` matches ``fr``).
- :func:`choose`: the locale of a request: ``?lang=xx`` first (and remembered in the
  ``ila_lang`` cookie), then that cookie, then ``Accept-Language``, then English.
- :func:`localized`: a :class:`Localized` for a locale: ``gettext``/``ngettext`` and
  ``number``/``money``/``date`` formatting through Babel; what an e-mail needs.
- :class:`Pages`: Jinja2 templates of one or more folders rendered in the request's
  locale, with ``jinja2.ext.i18n`` installed (``{% trans %}``, ``_()``, new-style, so
  ``_("%(n)s found", n=3)`` formats and escapes); every page gets ``lang`` (for
  ``<html lang>``), ``loc`` (the :class:`Localized`) and ``languages`` (the switch links).
  Its responses carry ``Vary``/``Content-Language`` and set the cookie when asked to.
- :func:`N_`: marks a string in Python code for extraction, translated where it is shown.

Source strings are English and are their own translation. The catalogues are
``shared/locale/<lang>/LC_MESSAGES/messages.po``, extracted with the repository's
``babel.cfg`` (``make messages``); they are compiled in memory from the ``.po`` files when a
locale is first used, so no compiled ``.mo`` file is kept or can be stale.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, get_currency_precision
from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

LOCALES: tuple[str, ...] = ("en", "fr", "de")
DEFAULT_LOCALE = "en"
COOKIE = "ila_lang"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
# each language's name in itself, for the switch
NAMES = {"en": "English", "fr": "Français", "de": "Deutsch"}
# Babel locale used for formatting: English as written in the EU (12 Mar 2026, €1,800.00)
FORMAT_LOCALES = {"en": "en_IE"}
DATE_FORMAT = "d MMM y"
COOKIE_MAX_AGE = 365 * 24 * 3600
# a header is read up to this many ranges (a browser sends a handful)
MAX_RANGES = 32
_RANGE = re.compile(r"^(?:\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)$")
_QVALUE = re.compile(r"^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


# -- choosing the locale ------------------------------------------------------------


def parse_accept_language(header: str | None) -> list[tuple[str, float]]:
    """The language ranges of an ``Accept-Language`` header, lower-cased, most wanted
    first (equal quality: the header's order). Malformed entries are skipped."""
    ranges: list[tuple[str, float]] = []
    for entry in (header or "").split(",")[:MAX_RANGES]:
        tag, _, params = entry.strip().partition(";")
        tag = tag.strip()
        if not tag or not _RANGE.match(tag):
            continue
        quality = 1.0
        if params:
            name, _, value = params.strip().partition("=")
            if name.strip().lower() != "q" or not _QVALUE.match(value.strip()):
                continue
            quality = float(value)
        ranges.append((tag.lower(), quality))
    return sorted(ranges, key=lambda r: -r[1])


def _supported(tag: str, supported: Sequence[str]) -> str | None:
    primary = tag.split("-", 1)[0]
    return primary if primary in supported else None


def negotiate(header: str | None, supported: Sequence[str] = LOCALES) -> str:
    """The supported locale an ``Accept-Language`` header prefers (the first of
    ``supported`` when it names none)."""
    ranges = parse_accept_language(header)
    # "fr;q=0" refuses French; "fr-ca;q=0" refuses only that variant, not all French
    refused = {tag for tag, q in ranges if q == 0}
    for tag, quality in ranges:
        if quality == 0:
            continue
        if tag == "*":
            for locale in supported:
                if locale not in refused:
                    return locale
            continue
        matched = _supported(tag, supported)
        if matched is not None and matched not in refused:
            return matched
    return supported[0]


@dataclass(frozen=True)
class Choice:
    locale: str
    # the request asked for it explicitly (?lang=): remember it in the cookie
    remember: bool


def choose(request: Request) -> Choice:
    """The request's locale: ``?lang=``, then the cookie, then ``Accept-Language``."""
    asked = request.query_params.get("lang", "").strip().lower()
    if asked in LOCALES:
        return Choice(asked, remember=True)
    kept = request.cookies.get(COOKIE, "")
    if kept in LOCALES:
        return Choice(kept, remember=False)
    return Choice(negotiate(request.headers.get("accept-language")), remember=False)


# -- catalogues and formatting ----------------------------------------------------------


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str) -> NullTranslations:
    """The locale's messages, compiled from its ``.po`` file (fuzzy entries left out)."""
    po = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if locale == DEFAULT_LOCALE or not po.exists():
        return NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=locale, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled, domain=DOMAIN)


@dataclass(frozen=True)
class Localized:
    """Messages and formats of one locale."""

    locale: str
    messages: NullTranslations

    @property
    def _babel(self) -> str:
        return FORMAT_LOCALES.get(self.locale, self.locale)

    def gettext(self, message: str) -> str:
        return self.messages.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.messages.ngettext(singular, plural, n)

    def number(self, value: int | float | Decimal, format: str | None = None) -> str:
        """``value`` as the locale writes it; ``format`` a CLDR pattern (``"#,##0.0"``:
        always one decimal)."""
        return format_decimal(value, format, locale=self._babel)

    def money(self, minor_units: int, currency: str) -> str:
        """An amount in minor units (cents) of ``currency``."""
        amount = Decimal(minor_units).scaleb(-get_currency_precision(currency))
        return format_currency(amount, currency, locale=self._babel)

    def date(self, value: date | datetime) -> str:
        return format_date(value, DATE_FORMAT, locale=self._babel)

    def datetime(self, value: datetime) -> str:
        return format_datetime(value, "medium", locale=self._babel)


@lru_cache(maxsize=len(LOCALES))
def localized(locale: str) -> Localized:
    if locale not in LOCALES:
        locale = DEFAULT_LOCALE
    return Localized(locale, translations(locale))


# -- pages ----------------------------------------------------------------------------


def language_links(request: Request, current: str) -> list[dict[str, Any]]:
    """One link per locale: the same page with ``?lang=`` set."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return [
        {
            "code": code,
            "name": NAMES[code],
            "href": request.url.path + "?" + urlencode([*params, ("lang", code)]),
            "current": code == current,
        }
        for code in LOCALES
    ]


class Pages:
    """Templates of ``directories`` rendered in each request's locale (one Jinja2
    environment per locale, so concurrent requests never share installed translations).
    ``globals`` are added to every environment."""

    def __init__(
        self, directories: Path | Iterable[Path], globals: Mapping[str, Any] | None = None
    ) -> None:
        dirs = [directories] if isinstance(directories, Path) else list(directories)
        self.directories = [str(d) for d in dirs]
        self.globals = dict(globals or {})
        self._environments: dict[str, Environment] = {}

    def environment(self, locale: str) -> Environment:
        env = self._environments.get(locale)
        if env is None:
            env = Environment(
                loader=FileSystemLoader(self.directories),
                autoescape=select_autoescape(["html"]),
                trim_blocks=True,
                lstrip_blocks=True,
                extensions=["jinja2.ext.i18n"],
            )
            env.policies["ext.i18n.trimmed"] = True
            env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
            env.globals.update(self.globals)
            self._environments[locale] = env
        return env

    def render(
        self,
        request: Request,
        template: str,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        choice = choose(request)
        loc = localized(choice.locale)
        html = (
            self.environment(choice.locale)
            .get_template(template)
            .render(
                lang=choice.locale,
                loc=loc,
                languages=language_links(request, choice.locale),
                **context,
            )
        )
        response = HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))
        response.headers["Content-Language"] = choice.locale
        response.headers["Vary"] = "Accept-Language, Cookie"
        if choice.remember:
            response.headers["Cache-Control"] = "no-store"
            response.set_cookie(
                COOKIE,
                choice.locale,
                max_age=COOKIE_MAX_AGE,
                path="/",
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
            )
        return response
