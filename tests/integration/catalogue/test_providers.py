"""Providers: registration by an agency, validation, quality-assurance decisions, and
eligibility that lapses by itself when the quality assurance expires."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.integration.support.catalogue import catalogue, provider_body

pytestmark = pytest.mark.postgres


async def test_register_read_accredit_suspend(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        body = provider_body()
        r = await cat.c.post("/v1/providers", json=body, headers=cat.agency)
        assert r.status_code == 201, r.text
        provider = r.json()
        pid = provider["provider_id"]
        assert r.headers["location"] == f"/v1/providers/{pid}"
        assert provider["status"] == "registered"
        assert provider["eligible"] is False
        assert provider["ineligibility"] == "not_accredited"
        assert provider["payout"] == {"iban": "DE89370400440532013000", "bic": "COBADEFFXXX"}

        again = await cat.c.post("/v1/providers", json=body, headers=cat.agency)
        assert again.status_code == 409
        assert again.headers["content-type"] == "application/problem+json"
        assert again.json()["provider_id"] == pid

        r = await cat.c.post(
            f"/v1/providers/{pid}/accredit",
            json={"reason_code": "qa_audit_passed"},
            headers=cat.agency,
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "accredited" and r.json()["eligible"] is True

        # the provider reads itself; another provider gets the 404 of a missing provider
        own = await cat.c.get(f"/v1/providers/{pid}", headers=cat.provider_token(pid))
        assert own.status_code == 200 and own.json()["name"] == body["name"]
        other = await cat.c.get(f"/v1/providers/{pid}", headers=cat.provider_token(str(pid)[::-1]))
        assert other.status_code == 404
        assert other.json()["detail"] == f"no provider {pid}"

        suspension = {"reason_code": "fraud_suspected", "note": "fraud inquiry"}
        r = await cat.c.post(f"/v1/providers/{pid}/suspend", json=suspension, headers=cat.agency)
        assert r.status_code == 200
        assert r.json()["status"] == "suspended"
        assert r.json()["status_reason"] == "fraud_suspected"
        assert r.json()["status_note"] == "fraud inquiry"
        assert r.json()["eligible"] is False
        again = await cat.c.post(
            f"/v1/providers/{pid}/suspend",
            json={"reason_code": "fraud_suspected"},
            headers=cat.agency,
        )
        assert again.status_code == 409

        types = [e["type"] for e in await cat.events("Provider%")]
        assert types == [
            "ila.catalogue.ProviderRegistered.v1",
            "ila.catalogue.ProviderAccredited.v2",
            "ila.catalogue.ProviderSuspended.v2",
        ]
        registered = (await cat.events("ProviderRegistered"))[0]["data"]
        assert registered["payout"]["iban"] == "DE89370400440532013000"
        assert registered["qa_valid_until"] == body["quality_assurance"]["valid_until"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"payout": {"iban": "DE89 3704 0044 0532 0130 01", "bic": "COBADEFFXXX"}}, "payout.iban"),
        ({"payout": {"iban": "DE89 3704 0044 0532 0130 00", "bic": "NOTABIC"}}, "payout.bic"),
        ({"country": "XX"}, "country"),
        ({"name": ""}, "name"),
        (
            {"quality_assurance": {"scheme": "Qualiopi", "valid_until": "someday"}},
            "quality_assurance.valid_until",
        ),
    ],
)
async def test_bad_provider_is_refused_and_nothing_stored(
    db_url: str, change: dict[str, object], field: str
) -> None:
    async with catalogue(db_url) as cat:
        r = await cat.c.post("/v1/providers", json=provider_body(**change), headers=cat.agency)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert field in {e["field"] for e in r.json()["errors"]}
        assert await cat.scalar("SELECT count(*) FROM catalogue.providers") == 0
        assert await cat.scalar("SELECT count(*) FROM catalogue.outbox") == 0


async def test_expired_quality_assurance_is_refused_at_registration(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        yesterday = (date.today() - timedelta(days=1)).isoformat()
        body = provider_body(quality_assurance={"scheme": "Qualiopi", "valid_until": yesterday})
        r = await cat.c.post("/v1/providers", json=body, headers=cat.agency)
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "quality_assurance.valid_until"
        assert await cat.scalar("SELECT count(*) FROM catalogue.providers") == 0


async def test_only_agencies_register_and_decide(db_url: str) -> None:
    async with catalogue(db_url) as cat:
        pid, provider = await cat.provider(accredit=False)
        for headers in (provider, cat.learner, cat.auditor):
            r = await cat.c.post("/v1/providers", json=provider_body(), headers=headers)
            assert r.status_code == 403
            r = await cat.c.post(
                f"/v1/providers/{pid}/accredit",
                json={"reason_code": "qa_audit_passed"},
                headers=headers,
            )
            assert r.status_code == 403
        r = await cat.c.post("/v1/providers", json=provider_body())
        assert r.status_code == 401
        assert (await cat.c.get(f"/v1/providers/{pid}", headers=cat.learner)).status_code == 403


async def test_expired_quality_assurance_makes_the_provider_ineligible_by_itself(
    db_url: str,
) -> None:
    async with catalogue(db_url) as cat:
        pid, provider = await cat.provider()
        course = await cat.approved(provider, title="Forklift licence")
        listed = await cat.c.get("/v1/public/courses", params={"q": "forklift"})
        assert [c["course_id"] for c in listed.json()["items"]] == [course["course_id"]]

        # time passes: the QA's last valid day was yesterday; nobody changes the status
        await cat.execute(
            "UPDATE catalogue.providers SET qa_valid_until = current_date - 1 "
            "WHERE provider_id = :p",
            p=pid,
        )
        r = await cat.c.get(f"/v1/providers/{pid}", headers=cat.agency)
        assert r.json()["status"] == "accredited"
        assert r.json()["eligible"] is False
        assert r.json()["ineligibility"] == "quality_assurance_expired"
        listed = await cat.c.get("/v1/public/courses", params={"q": "forklift"})
        assert listed.json()["items"] == []

        # re-accrediting needs a renewed QA
        r = await cat.c.post(
            f"/v1/providers/{pid}/accredit",
            json={"reason_code": "qa_audit_passed"},
            headers=cat.agency,
        )
        assert r.status_code == 409  # already accredited, and no renewal given
        renewal = {
            "reason_code": "qa_renewed",
            "quality_assurance": {
                "scheme": "Qualiopi",
                "valid_until": (date.today() + timedelta(days=400)).isoformat(),
            },
        }
        r = await cat.c.post(f"/v1/providers/{pid}/accredit", json=renewal, headers=cat.agency)
        assert r.status_code == 200 and r.json()["eligible"] is True
        listed = await cat.c.get("/v1/public/courses", params={"q": "forklift"})
        assert len(listed.json()["items"]) == 1
