"""The server-rendered registry page (HTML over HTTP; the browser test drives it for real)."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.integration.support.catalogue import catalogue

pytestmark = pytest.mark.postgres


async def test_search_page_filters_and_course_page(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, p = await cat.provider()
        welding = await cat.approved(p, title="Welding <basics>", eqf_level=3, price=99_950)
        await cat.approved(
            p,
            title="Cloud computing",
            eqf_level=5,
            isced_field="0612",
            mode="online",
            learning_outcomes=["Deploy containers"],
        )
        await cat.course(p, title="Hidden draft")

        r = await cat.c.get("/registry")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        page = r.text
        assert '<html lang="en">' in page
        assert "<script" not in page  # works without JavaScript
        assert '<main id="content"' in page and 'role="search"' in page
        for field in ("q", "eqf_level", "mode", "isced", "region", "max_eur"):
            assert f'<label for="{field}"' in page and f'id="{field}"' in page
        assert "Welding &lt;basics&gt;" in page and "<basics>" not in page  # escaped
        assert "Cloud computing" in page and "Hidden draft" not in page
        assert "€999.50" in page  # formatted for the locale (Babel)
        assert "2 courses found" in page

        r = await cat.c.get("/registry", params={"q": "containers"})
        assert "Cloud computing" in r.text and "Welding" not in r.text
        r = await cat.c.get("/registry", params={"eqf_level": "3", "mode": "", "max_eur": ""})
        assert "Welding" in r.text and "Cloud computing" not in r.text
        assert re.search(r'<option value="3" selected>Level 3 \(1\)', r.text)
        r = await cat.c.get("/registry", params={"isced": "06"})
        assert "Cloud computing" in r.text and "Welding" not in r.text
        r = await cat.c.get("/registry", params={"max_eur": "500"})
        assert "No course matches" in r.text
        # what the page cannot read it ignores
        r = await cat.c.get(
            "/registry", params={"max_eur": "cheap", "eqf_level": "99", "after": "junk"}
        )
        assert r.status_code == 200 and "2 courses found" in r.text

        r = await cat.c.get(f"/registry/courses/{welding['course_id']}")
        assert r.status_code == 200
        course_page = r.text
        assert "Weld steel plates safely" in course_page
        assert "Certificate in basic arc welding" in course_page
        assert "<h1" in course_page and '<th scope="col">Seats</th>' in course_page
        r = await cat.c.get(f"/registry/courses/{uuid.uuid4()}")
        assert r.status_code == 404 and "Course not found" in r.text
        r = await cat.c.get("/registry/courses/not-an-id")
        assert r.status_code == 404


async def test_page_links_to_the_next_page(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, p = await cat.provider()
        for i in range(12):
            await cat.approved(p, title=f"Module {i:02d}", region="Bretagne")
        first = await cat.c.get("/registry", params={"region": "Bretagne"})
        assert "12 courses found" in first.text
        match = re.search(r'href="(/registry\?[^"]+)" rel="next"', first.text)
        assert match is not None
        second = await cat.c.get(match.group(1).replace("&amp;", "&"))
        shown = set(re.findall(r"Module \d\d", first.text)) | set(
            re.findall(r"Module \d\d", second.text)
        )
        assert len(shown) == 12
        assert 'rel="next"' not in second.text
