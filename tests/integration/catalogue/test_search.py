"""The public registry search: what is listed, relevance, facets and pagination."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.support.catalogue import Catalogue, catalogue

pytestmark = pytest.mark.postgres


async def search(cat: Catalogue, **params: Any) -> dict[str, Any]:
    r = await cat.c.get("/v1/public/courses", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def titles(reply: dict[str, Any]) -> list[str]:
    return [c["title"] for c in reply["items"]]


async def test_only_approved_courses_of_eligible_providers_are_listed(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, good = await cat.provider()
        bad_id, bad = await cat.provider()
        await cat.approved(good, title="Listed carpentry")
        await cat.course(good, title="Draft carpentry")
        submitted = await cat.course(good, title="Submitted carpentry")
        await cat.c.post(f"/v1/courses/{submitted['course_id']}/submit", headers=good)
        withdrawn = await cat.approved(good, title="Withdrawn carpentry")
        r = await cat.c.post(f"/v1/courses/{withdrawn['course_id']}/withdraw", headers=good)
        assert r.status_code == 200
        await cat.approved(bad, title="Suspended carpentry")
        r = await cat.c.post(
            f"/v1/providers/{bad_id}/suspend",
            json={"reason_code": "fraud_suspected"},
            headers=cat.agency,
        )
        assert r.status_code == 200

        reply = await search(cat, q="carpentry")
        assert titles(reply) == ["Listed carpentry"]
        assert reply["total"] == 1
        assert titles(await search(cat)) == ["Listed carpentry"]
        assert reply["items"][0]["price"] == 125_000 and reply["items"][0]["currency"] == "EUR"

        # the public course page answers only for listed courses
        listed = reply["items"][0]["course_id"]
        assert (await cat.c.get(f"/v1/public/courses/{listed}")).status_code == 200
        r = await cat.c.get(f"/v1/public/courses/{withdrawn['course_id']}")
        assert r.status_code == 404


async def test_relevance_title_before_outcomes_before_description(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, p = await cat.provider()
        await cat.approved(
            p,
            title="Office skills",
            description="Spreadsheets and letters.",
            learning_outcomes=["Write Python scripts to automate reports"],
        )
        await cat.approved(
            p,
            title="Python programming",
            description="Learn to program.",
            learning_outcomes=["Write small programs"],
        )
        await cat.approved(
            p,
            title="Data literacy",
            description="Uses Python notebooks throughout.",
            learning_outcomes=["Read charts"],
        )
        await cat.approved(
            p, title="Bricklaying", description="Walls.", learning_outcomes=["Lay bricks"]
        )
        reply = await search(cat, q="python")
        assert titles(reply) == ["Python programming", "Office skills", "Data literacy"]
        ranks = [c["rank"] for c in reply["items"]]
        assert ranks == sorted(ranks, reverse=True) and ranks[0] > ranks[-1]

        # a word found only in the learning outcomes finds the course
        assert titles(await search(cat, q="automate")) == ["Office skills"]
        # stemming in the course's language: "automating reports" matches "automate reports"
        assert titles(await search(cat, q="automating reports")) == ["Office skills"]
        # web-search syntax: a phrase, and exclusion
        assert titles(await search(cat, q='"lay bricks"')) == ["Bricklaying"]
        assert titles(await search(cat, q="python -notebooks")) == [
            "Python programming",
            "Office skills",
        ]
        assert titles(await search(cat, q="zeppelin")) == []


async def test_each_facet_filters_and_counts(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, p = await cat.provider()
        await cat.approved(
            p,
            title="A welding",
            eqf_level=3,
            isced_field="0715",
            mode="in_person",
            region="Bretagne",
            price=100_000,
        )
        await cat.approved(
            p,
            title="B software",
            eqf_level=5,
            isced_field="0613",
            mode="online",
            region="Occitanie",
            price=250_000,
        )
        await cat.approved(
            p,
            title="C databases",
            eqf_level=5,
            isced_field="0612",
            mode="blended",
            region="Bretagne",
            price=180_000,
        )
        await cat.approved(
            p,
            title="D nursing",
            eqf_level=4,
            isced_field="0913",
            mode="in_person",
            region="Occitanie",
            price=90_000,
        )

        assert titles(await search(cat, eqf_level=5)) == ["B software", "C databases"]
        assert titles(await search(cat, eqf_level=[3, 4])) == ["A welding", "D nursing"]
        # ISCED-F prefix: the broad field 06 covers 0612 and 0613; 061 too; 0613 only itself
        assert titles(await search(cat, isced="06")) == ["B software", "C databases"]
        assert titles(await search(cat, isced="061")) == ["B software", "C databases"]
        assert titles(await search(cat, isced="0613")) == ["B software"]
        assert titles(await search(cat, isced="07")) == ["A welding"]
        assert titles(await search(cat, mode="online")) == ["B software"]
        assert titles(await search(cat, mode=["online", "blended"])) == [
            "B software",
            "C databases",
        ]
        assert titles(await search(cat, region="bretagne")) == ["A welding", "C databases"]
        assert titles(await search(cat, max_price=100_000)) == ["A welding", "D nursing"]
        assert titles(await search(cat, max_price=89_999)) == []
        combined = await search(cat, region="Bretagne", eqf_level=5)
        assert titles(combined) == ["C databases"] and combined["total"] == 1

        facets = (await search(cat))["facets"]
        assert {f["value"]: f["count"] for f in facets["eqf_level"]} == {"3": 1, "4": 1, "5": 2}
        assert {f["value"]: f["count"] for f in facets["isced"]} == {"06": 2, "07": 1, "09": 1}
        assert {f["value"]: f["count"] for f in facets["mode"]} == {
            "blended": 1,
            "in_person": 2,
            "online": 1,
        }
        assert {f["value"]: f["count"] for f in facets["region"]} == {"Bretagne": 2, "Occitanie": 2}
        assert next(f for f in facets["isced"] if f["value"] == "06")["label"] == (
            "Information and Communication Technologies (ICTs)"
        )
        # each facet counts without its own filter, with the others applied
        facets = (await search(cat, region="Bretagne", eqf_level=5))["facets"]
        assert {f["value"]: f["count"] for f in facets["eqf_level"]} == {"3": 1, "5": 1}
        assert {f["value"]: f["count"] for f in facets["region"]} == {"Bretagne": 1, "Occitanie": 1}
        assert {f["value"]: f["count"] for f in facets["mode"]} == {"blended": 1}


@pytest.mark.parametrize(
    "params",
    [
        {"eqf_level": 9},
        {"isced": "6"},
        {"isced": "06%"},
        {"mode": "correspondence"},
        {"max_price": -1},
        {"limit": 0},
        {"limit": 101},
        {"after": "not-a-cursor"},
    ],
)
async def test_bad_search_parameters_are_4xx_problems(db_url: str, params: dict[str, Any]) -> None:
    async with catalogue(db_url) as cat:
        r = await cat.c.get("/v1/public/courses", params=params)
        assert 400 <= r.status_code < 500
        assert r.headers["content-type"] == "application/problem+json"


async def _walk(cat: Catalogue, **params: Any) -> list[str]:
    seen: list[str] = []
    after = None
    for _ in range(20):
        page = await search(cat, **params, **({"after": after} if after else {}))
        seen += [c["course_id"] for c in page["items"]]
        after = page["next"]
        if after is None:
            return seen
    raise AssertionError("pagination did not end")


async def test_pagination_never_repeats_or_skips(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, p = await cat.provider()
        ids = set()
        for i in range(23):
            # many equal titles and equal ranks: the course id must break the ties
            title = f"Carpentry module {i % 3}"
            course = await cat.approved(p, title=title, description="Carpentry " * (1 + i % 2))
            ids.add(course["course_id"])
        await cat.approved(p, title="Pottery", description="Clay.")

        everything = await _walk(cat, limit=5)
        assert len(everything) == 24 and len(set(everything)) == 24

        ranked = await _walk(cat, q="carpentry", limit=4)
        assert len(ranked) == len(set(ranked)) == 23
        assert set(ranked) == ids
        one_page = await search(cat, q="carpentry", limit=100)
        assert [c["course_id"] for c in one_page["items"]] == ranked
        assert one_page["next"] is None and one_page["total"] == 23

        # a cursor is tied to its kind of query
        first = await search(cat, limit=5)
        r = await cat.c.get("/v1/public/courses", params={"q": "carpentry", "after": first["next"]})
        assert r.status_code == 400


async def test_queries_are_stemmed_in_each_courses_language(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, p = await cat.provider()
        await cat.approved(
            p,
            title="Formation aux métiers du bois",
            language="fr",
            description="Menuiserie et ébénisterie en atelier.",
            learning_outcomes=["Travailler comme cuisinier de chantier"],
        )
        await cat.approved(
            p,
            title="Lehrgang in der Werkstatt",
            language="de",
            description="Grundlagen des Lichtbogenschweißens.",
            learning_outcomes=["Pflegekraft im Betrieb unterstützen"],
        )
        await cat.approved(
            p,
            title="Woodworking trades",
            language="en",
            description="Joinery drills in a workshop.",
            learning_outcomes=["Plane and join boards"],
        )
        french, german = ["Formation aux métiers du bois"], ["Lehrgang in der Werkstatt"]
        # the query is parsed with the French stemmer for the French course: "métier" and
        # "métiers" are both 'méti' (in English they stay "métier"), "cuisinière" 'cuisini'
        assert titles(await search(cat, q="formations")) == french
        assert titles(await search(cat, q="métier")) == french
        assert titles(await search(cat, q="cuisinière")) == french
        # and with the German one for the German course ("Werkstätten" is 'werkstatt')
        assert titles(await search(cat, q="Werkstätten")) == german
        assert titles(await search(cat, q="Lehrgänge")) == german
        assert titles(await search(cat, q="Pflegekräfte")) == german
        # English stemming stays for English courses
        assert titles(await search(cat, q="drilling")) == ["Woodworking trades"]
        # the reader's language (lang) does not change what a course's words match
        assert titles(await search(cat, q="métier", lang="de")) == french
        # the registry page searches the same way
        r = await cat.c.get("/registry", params={"q": "Werkstätten"})
        assert "Lehrgang in der Werkstatt" in r.text and "Formation aux" not in r.text


async def test_a_revised_course_is_indexed_in_its_new_language(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        _, p = await cat.provider()
        course = await cat.approved(p, title="Cuisinière professionnelle", language="en")
        # indexed in English: "cuisiniers" ('cuisini') does not meet "cuisinière" ('cuisinièr')
        assert titles(await search(cat, q="cuisiniers")) == []
        config = "SELECT search_config FROM catalogue.courses WHERE course_id = :c"
        assert await cat.scalar(config, c=course["course_id"]) == "english"
        r = await cat.c.patch(
            f"/v1/courses/{course['course_id']}",
            json={"language": "fr"},
            headers=p,
        )
        assert r.status_code == 200, r.text
        assert await cat.scalar(config, c=course["course_id"]) == "french"
        if r.json()["status"] != "approved":  # a changed course is reviewed again
            r = await cat.c.post(
                f"/v1/courses/{course['course_id']}/approve",
                json={"reason_code": "meets_criteria"},
                headers=cat.agency,
            )
            assert r.status_code == 200, r.text
        assert titles(await search(cat, q="cuisiniers")) == ["Cuisinière professionnelle"]
