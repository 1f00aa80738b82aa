"""``ila demo`` seeds a country into a running ``ila run`` (on its own database and port)
through the public API; every kind of thing it promises is then found through the API:
accounts, the year's policy and allocation, approved courses in the public registry,
confirmed enrolments, captured claims, a released payout with a valid SEPA file, and
credentials that verify. A second run adds a second cohort."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import xmlschema

from ila.demo_data import REGIONS
from tests.integration.support.payments import XSD
from tests.support import bearer, free_port, settings_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def system(db_url: str, tmp_path: Path) -> Iterator[str]:
    """``ila run`` on a free port over the test's database; its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ILA_")}
    env |= {
        "ILA_DATABASE_URL": db_url,
        "ILA_DATA_DIR": str(tmp_path),
        "ILA_PORT": str(port),
        "ILA_LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ila.cli", "run"], env=env, cwd=REPO, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "ila run did not become ready"
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def demo(url: str, learners: int) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ILA_")}
    done = subprocess.run(
        [sys.executable, "-m", "ila.cli", "demo", "--url", url, "--learners", str(learners)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def get(c: httpx.Client, path: str, headers: dict[str, str]) -> Any:
    r = c.get(path, headers=headers)
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
    return r.json()


def test_demo_seeds_every_kind_of_thing(system: str, db_url: str) -> None:
    out = demo(system, 200)
    assert "cohort 1 seeded" in out, out
    settings = settings_for(db_url)
    admin, finance = bearer(settings, "admin"), bearer(settings, "finance")
    year = datetime.now(UTC).year
    with httpx.Client(base_url=system, timeout=30) as c:
        # accounts, opened by the agencies of the regions
        opened = 0
        for region in REGIONS:
            agency = bearer(settings, "agency", agency_id=region.agency_id)
            items = get(c, "/v1/accounts?limit=500", agency)["items"]
            assert all(i["country"] == "FR" and i["region"] == region.code for i in items)
            opened += len(items)
        assert opened == 200

        # the year's policy and an allocation run, each approved by a second person
        policy = get(c, f"/v1/ledger/policies/{year}", finance)
        assert policy["approved_by"] and policy["approved_by"] != policy["proposed_by"]
        approvals = get(c, "/v1/ledger/approvals?action=allocation", admin)["items"]
        [allocation] = [a for a in approvals if a["status"] == "approved"]
        run = get(c, f"/v1/ledger/allocations/{allocation['result']['allocation_id']}", admin)
        assert run["status"] == "finished" and run["granted_count"] == 200

        # approved courses across ISCED-F fields, in the public registry
        registry = get(c, "/v1/public/courses?limit=100", {})
        assert registry["total"] >= 18
        assert len({f["value"] for f in registry["facets"]["isced"]}) >= 5

        # enrolments confirmed by learners, some still waiting for their consent
        confirmed = get(c, "/v1/enrolments?status=confirmed&limit=500", admin)["items"]
        waiting = get(c, "/v1/enrolments?status=awaiting_learner_confirmation", admin)["items"]
        assert confirmed and waiting

        # completions claimed and captured by the ledger (paid, in a payout or awaiting)
        claims = get(c, "/v1/claims?limit=500", admin)["items"]
        assert {cl["status"] for cl in claims} & {"captured", "in_payout", "paid"}
        assert any(cl["attestation"] == "attested" for cl in claims)

        # a payout run released by finance, with a valid SEPA credit-transfer file
        runs = get(c, "/v1/payouts/runs", admin)["items"]
        released = [r for r in runs if r["status"] == "released"]
        assert released, runs
        payout = next(p for p in released[0]["payouts"] if p["status"] == "sent")
        sepa = c.get(f"/v1/payouts/{payout['payout_id']}/sepa", headers=admin)
        assert sepa.status_code == 200, sepa.text
        xmlschema.XMLSchema(str(XSD)).validate(sepa.text)

        # the credential of the learner the summary names verifies
        match = re.search(r"a learner with a credential: account ([0-9a-f-]{36})", out)
        assert match, out
        learner = bearer(settings, "learner", sub=match.group(1))
        [credential, *_] = get(c, "/v1/credentials", learner)
        r = c.post("/v1/credentials/verify", json=credential["credential"])
        assert r.status_code == 200 and r.json()["valid"] is True, r.text

    # running it again adds a second cohort, with its own people and providers
    again = demo(system, 20)
    assert "cohort 2 seeded" in again and "accounts opened: 20" in again, again
