"""The public pages in English, French and German: chosen from Accept-Language, switched
with ?lang (kept in the ila_lang cookie), with numbers, prices and dates of the locale."""

from __future__ import annotations

import re

import pytest

from tests.integration.support.catalogue import catalogue

pytestmark = pytest.mark.postgres


async def test_the_language_follows_accept_language_then_the_switch(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, p = await cat.provider()
        course = await cat.approved(p, title="Welding basics", price=180_000, language="en")

        r = await cat.c.get("/registry")
        assert '<html lang="en">' in r.text and "Find training" in r.text
        assert r.headers["content-language"] == "en"
        assert "€1,800.00" in r.text and "1 course found" in r.text

        french = {"accept-language": "fr-CH, fr;q=0.9, en;q=0.8"}
        r = await cat.c.get("/registry", headers=french)
        page = r.text
        assert r.status_code == 200 and '<html lang="fr">' in page
        assert r.headers["content-language"] == "fr"
        assert "Accept-Language" in r.headers["vary"] and "Cookie" in r.headers["vary"]
        assert "<title>Trouver une formation · Comptes individuels de formation</title>" in page
        assert "Rechercher une formation" in page and "Tous les niveaux" in page
        assert "1 formation trouvée" in page
        assert "1\u202f800,00\xa0€" in page  # French grouping and currency placement
        assert "Ingénierie, industries de transformation et construction" in page  # ISCED-F
        assert "Find training" not in page and "Search courses" not in page
        assert "set-cookie" not in r.headers  # a browser's preference is not stored

        # quality values are honoured: German preferred over French here
        r = await cat.c.get("/registry", headers={"accept-language": "fr;q=0.4, de;q=0.8"})
        assert '<html lang="de">' in r.text and "Weiterbildung finden" in r.text

        # the switch: a link to each language on every page, keeping the query
        r = await cat.c.get("/registry", params={"q": "welding"}, headers=french)
        links = re.findall(r'<a href="([^"]+)" lang="(\w\w)" hreflang="\w\w"', r.text)
        assert [lang for _, lang in links] == ["en", "fr", "de"]
        assert links[2][0] == "/registry?q=welding&amp;lang=de"

        r = await cat.c.get("/registry", params={"q": "welding", "lang": "de"}, headers=french)
        assert '<html lang="de">' in r.text and "1 Kurs gefunden" in r.text
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("ila_lang=de;")
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert r.headers["cache-control"] == "no-store"
        # the cookie now wins over the browser's header, on every page
        cat.c.cookies.set("ila_lang", "de")
        r = await cat.c.get(f"/registry/courses/{course['course_id']}", headers=french)
        page = r.text
        assert '<html lang="de">' in page and "Was Sie lernen" in page
        assert "1.800,00\xa0€" in page and "Englisch" in page  # the course's language, in German
        assert "70 Stunden" in page and "2,5 ECTS" in page
        assert re.search(r"<td>\d{1,2} \w+\.? \d{4}</td>", page)  # a German date
        r = await cat.c.get("/verify", headers=french)
        assert '<html lang="de">' in r.text and "Nachweis prüfen" in r.text
        # an unknown ?lang is ignored; the cookie stays
        r = await cat.c.get("/registry", params={"lang": "xx"}, headers=french)
        assert '<html lang="de">' in r.text and "set-cookie" not in r.headers
        cat.c.cookies.clear()
        r = await cat.c.get("/registry", params={"lang": "fr"})
        assert '<html lang="fr">' in r.text


async def test_not_found_page_in_french(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        r = await cat.c.get("/registry/courses/not-an-id", headers={"accept-language": "fr"})
        assert r.status_code == 404 and "Formation introuvable" in r.text
