"""Languages: Accept-Language negotiation, the catalogues (complete, compiled, formatted)
and what the registry pages' templates ask of them."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from jinja2 import Environment, FileSystemLoader, meta

from services.catalogue.api.labels import BROAD_FIELDS
from services.catalogue.domain import isced
from shared import i18n

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", [
            ("fr-ch", 1.0), ("fr", 0.9), ("en", 0.8), ("de", 0.7), ("*", 0.5),
        ]),
        ("de;q=0.3,en;q=0.9", [("en", 0.9), ("de", 0.3)]),
        ("en;q=0.5, fr;q=0.5", [("en", 0.5), ("fr", 0.5)]),  # ties keep the header's order
        ("", []),
        (None, []),
        ("fr;q=2, de;q=abc, en;x=1, it;q=0.333, es;q=0.1234", [("it", 0.333)]),
        ("*", [("*", 1.0)]),
        ("zh-Hant-TW;q=0.8", [("zh-hant-tw", 0.8)]),
        ("en-, -fr, 12345, d e", []),
        ("DE ; q=0.4", [("de", 0.4)]),
    ],
)  # fmt: skip
def test_parse_accept_language(header: str | None, expected: list[tuple[str, float]]) -> None:
    assert i18n.parse_accept_language(header) == expected


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        ("fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7", "fr"),
        ("de-AT", "de"),
        ("it, de;q=0.5, fr;q=0.8", "fr"),  # Italian is not offered: the next best
        ("en;q=0.1, de;q=0.9", "de"),
        ("es, it", "en"),  # nothing offered: English
        ("*", "en"),
        ("en;q=0, *", "fr"),  # anything but English
        ("fr-CA;q=0, fr;q=0.5", "fr"),  # refusing a variant is not refusing French
        (None, "en"),
        ("garbage;;;,,,", "en"),
    ],
)
def test_negotiate(header: str | None, locale: str) -> None:
    assert i18n.negotiate(header) == locale


def test_many_ranges_are_read_up_to_a_bound() -> None:
    header = ", ".join("xx;q=0.5" for _ in range(10_000)) + ", fr"
    assert len(i18n.parse_accept_language(header)) == i18n.MAX_RANGES
    assert i18n.negotiate(header) == "en"  # "fr" was past the bound


def test_formats_follow_the_locale() -> None:
    en, fr, de = (i18n.localized(code) for code in ("en", "fr", "de"))
    assert en.money(180_000, "EUR") == "€1,800.00"
    assert fr.money(180_000, "EUR") == "1\u202f800,00\xa0€"
    assert de.money(180_000, "EUR") == "1.800,00\xa0€"
    assert de.money(1_234, "JPY") == "1.234\xa0¥"  # no minor unit
    assert fr.number(2.5) == "2,5" and en.number(12_345) == "12,345"
    day = date(2026, 3, 12)
    assert (en.date(day), fr.date(day), de.date(day)) == (
        "12 Mar 2026",
        "12 mars 2026",
        "12 März 2026",
    )
    assert i18n.localized("xx").locale == "en"


def test_plural_forms_follow_the_language() -> None:
    fr = i18n.localized("fr")
    # French puts 0 and 1 in the singular, English and German only 1
    assert fr.ngettext("%(n)s hour", "%(n)s hours", 0) == "%(n)s heure"
    assert fr.ngettext("%(n)s hour", "%(n)s hours", 2) == "%(n)s heures"
    assert i18n.localized("de").ngettext("%(n)s hour", "%(n)s hours", 0) == "%(n)s Stunden"


def _extracted() -> set[str]:
    ids: set[str] = set()
    method_map = [
        ("shared/**.py", "python"),
        ("services/**.py", "python"),
        ("services/**/templates/**.html", "jinja2"),
        ("services/**/messages/templates/**.txt", "jinja2"),
    ]
    options = {
        "services/**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"},
        "services/**/messages/templates/**.txt": {"extensions": "jinja2.ext.i18n"},
    }
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    for _, _, message, _, _ in extract_from_dir(str(REPO), method_map, options, keywords=keywords):
        ids.add(message if isinstance(message, str) else message[0])
    return ids


@pytest.mark.parametrize("locale", ["fr", "de"])
def test_every_string_of_the_pages_is_translated(locale: str) -> None:
    po = REPO / "shared" / "locale" / locale / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as f:
        catalog = read_po(f, locale=locale)
    translated = {}
    for message in catalog:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        assert not message.fuzzy, key
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        assert all(strings), f"{locale}: no translation for {key!r}"
        translated[key] = strings
    missing = _extracted() - set(translated)
    assert not missing, f"{locale}: extracted but not in the catalogue (make messages): {missing}"
    # placeholders survive translation
    for error in catalog.check():
        raise AssertionError(error)
    # the broad ISCED-F fields of the search filter are the data's names
    assert set(BROAD_FIELDS) == {f.name for f in isced.broad_fields()}


def test_templates_use_only_what_the_pages_give_them() -> None:
    """Every free name of the catalogue's templates is given by Pages or the catalogue's
    globals, or by the route that renders it (a typo would render as nothing)."""
    folder = REPO / "services" / "catalogue" / "api" / "templates"
    env = Environment(loader=FileSystemLoader(folder), extensions=["jinja2.ext.i18n"])
    given = {"lang", "loc", "languages", "_", "gettext", "ngettext", "currency"}
    from services.catalogue.api.pages import PAGES

    given |= set(PAGES.globals)
    per_page = {
        "search.html": {"form", "hits", "total", "facets", "counts", "fields", "modes", "next_url"},
        "course.html": {"course", "c", "mc", "sessions"},
        "not_found.html": set(),
        "verify.html": {
            "problem", "verdict", "result", "errors", "summary", "pasted", "issuer_name",
            "issuer_did", "max_kb", "linked",
        },
        "base.html": set(),
    }  # fmt: skip
    for name, own in per_page.items():
        source = (folder / name).read_text()
        free = meta.find_undeclared_variables(env.parse(source))
        assert free <= given | own, f"{name}: {free - given - own}"


def test_the_shared_page_templates_use_only_what_every_page_gives_them() -> None:
    """The page frame and the language menu, which the registry and the portal both extend."""
    folder = REPO / "shared" / "web" / "templates"
    env = Environment(loader=FileSystemLoader(folder), extensions=["jinja2.ext.i18n"])
    given = {"lang", "loc", "languages", "_", "gettext", "ngettext"}
    per_page = {"page.html": set(), "languages.html": set()}
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*.html")} == set(per_page)
    for name, own in per_page.items():
        free = meta.find_undeclared_variables(env.parse((folder / name).read_text()))
        assert free <= given | own, f"{name}: {free - given - own}"


def test_translations_compile_from_the_po_files() -> None:
    fr = i18n.translations("fr")
    assert fr.gettext("Find training") == "Trouver une formation"
    assert i18n.translations("de").gettext("Find training") == "Weiterbildung finden"
    assert i18n.translations("en").gettext("Find training") == "Find training"
    assert not list((REPO / "shared" / "locale").rglob("*.mo"))  # compiled in memory only


def test_the_portals_templates_use_only_what_the_pages_give_them() -> None:
    """The same for the portal's pages (sign-in, learner pages, dashboard)."""
    from services.portal.api.render import PAGES

    folder = REPO / "services" / "portal" / "api" / "templates"
    env = Environment(loader=FileSystemLoader(folder), extensions=["jinja2.ext.i18n"])
    given = {"lang", "loc", "languages", "_", "gettext", "ngettext"}
    given |= set(PAGES.globals) | {"money", "day", "moment", "currency"}  # render.formats
    macros = {"proposal", "enrolment_card"}  # imported outside the blocks that use them
    per_page = {
        "base.html": set(),
        "dashboard.html": {"meta", "views", "charts", "national", "isced_name"},
        "learner/layout.html": {"here", "signed"},
        "learner/macros.html": {"covers"},  # set in a branch: seen as free
        "learner/me.html": {"signed", "view", "notice", *macros},
        "learner/history.html": {"signed", "entries"},
        "learner/enrolment.html": {"signed", "view", *macros},
        "learner/problem.html": {"signed", "plain", "detail"},
        "sign_in/no_account.html": set(),
        "sign_in/problem.html": {"title", "detail", "next"},
        "sign_in/signed_out.html": set(),
    }
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*.html")} == set(per_page)
    for name, own in per_page.items():
        free = meta.find_undeclared_variables(env.parse((folder / name).read_text()))
        assert free <= given | own, f"{name}: {free - given - own}"


@pytest.mark.parametrize(
    ("service", "kind", "subjects"),
    [
        ("accounts", "proposal_waiting", {
            "fr": "Une proposition de formation attend votre accord",
            "de": "Ein Weiterbildungsvorschlag wartet auf Ihre Zustimmung",
        }),
        ("catalogue", "payout_sent", {
            "fr": "Un versement vous a été envoyé",
            "de": "Eine Auszahlung wurde an Sie gesendet",
        }),
    ],
)  # fmt: skip
def test_every_message_is_written_in_the_recipients_language(
    service: str, kind: str, subjects: dict[str, str]
) -> None:
    """Each e-mail template renders in every language (its subject and every line of its
    body translated), through the shared catalogues."""
    from shared import mail

    folder = REPO / "services" / service / "messages" / "templates"
    templates = mail.Templates(folder)
    env = Environment(extensions=["jinja2.ext.i18n"])
    for path in sorted(folder.glob("*.txt")):
        names = meta.find_undeclared_variables(env.parse(path.read_text())) - {"_"}
        context = {name: "X" for name in names}
        english = templates.render(path.stem, "en", **context)
        for language in ("fr", "de"):
            subject, body = templates.render(path.stem, language, **context)
            assert subject != english[0], (path.name, language)
            lines = [line for line in english[1].splitlines() if " " in line]
            assert not set(lines) & set(body.splitlines()), (path.name, language, body)
    for language, subject in subjects.items():
        context = {
            n: "X"
            for n in meta.find_undeclared_variables(env.parse((folder / f"{kind}.txt").read_text()))
            - {"_"}
        }
        assert templates.render(kind, language, **context)[0] == subject
    assert templates.render(kind, "xx", **context)[0] == templates.render(kind, "en", **context)[0]
