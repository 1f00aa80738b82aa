"""``ila demo``: seed a small, realistic country into the running system, through its
public REST API only, so that every page and view has something to show.

Five regions of France, each with its employment agency; a few thousand adults with need
profiles in realistic proportions (onboarded by the agencies' CSV import); the state's
yearly policy and allocation (proposed by an administrator, approved by a second person of
finance); an employer's and a region's top-ups; providers accredited by quality assurance,
with courses across the ISCED-F fields and EQF levels, approved by their agency; enrolments
proposed by providers and answered by learners (most confirm, some refuse or cancel, some
have not answered yet, a provider going too fast is held for review); completions claimed,
captured, attested or contested; a payout run released by finance with its SEPA files; and
the micro-credentials of certified completions.

Tokens are development tokens (HS256 with ``ILA_JWT_SECRET``), minted as ``ila token``
does: the command refuses a production setting. Runs are reproducible with ``--seed``.
Running it again adds a further cohort (new people, new providers and courses, the same
agencies and funders; the year's policy is kept): a cohort is recognised as seeded by its
first provider's registration number, which the catalogue answers with 409. A run that
stopped halfway leaves what it made; the next run starts the next cohort.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated

import httpx
import typer

from ila.demo_api import Api, DemoError, refuse_production
from ila.demo_data import REGIONS, learners, providers
from ila.demo_flow import answer_all, claims, credentials, pay, propose_all
from ila.demo_plan import plan
from ila.demo_steps import (
    Cohort,
    allocate,
    first_provider,
    import_accounts,
    map_accounts,
    publish_courses,
    register_providers,
    top_ups,
    verify_payees,
    wallets_open,
)
from shared.settings import Settings, get_settings

MAX_COHORTS = 100


async def seed_country(
    url: str,
    *,
    count: int,
    seed: int,
    concurrency: int,
    settings: Settings,
    say: Callable[[str], None] = print,
) -> Cohort:
    """Seed one cohort into the system at ``url``; the cohort, with its counts."""
    refuse_production(settings)
    started = time.monotonic()

    async def step(what: str, work: Awaitable[object]) -> None:
        await work
        say(f"  {time.monotonic() - started:5.1f}s  {what}")

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        api = Api(client, settings, concurrency)
        api.patience = 60 + count / 20  # the events of a large import take their time
        try:
            ready = await client.get("/readyz")
        except httpx.HTTPError as exc:
            raise DemoError(f"nothing answers at {url} ({exc}): start it with `make run`") from exc
        if ready.status_code != 200:
            raise DemoError(f"{url}/readyz answers {ready.status_code}: the system is not ready")
        now = datetime.now(UTC)
        number, first_id = await _next_cohort(api, seed, now)
        people = learners(seed, number, count, now.date())
        cohort_plan = plan(seed, number, people)
        ends_now = _ends_now(now, api.patience)
        c = Cohort(api, seed, number, people, cohort_plan, ends_now)
        say(f"seeding cohort {number} (seed {seed}) into {url}")

        async def catalogue() -> None:
            await register_providers(c, first_id, now.date())
            await publish_courses(c, now)
            await verify_payees(c)

        await step(
            f"{count} accounts imported by {len(REGIONS)} agencies; "
            f"{len(cohort_plan.providers)} providers accredited, "
            f"{len(cohort_plan.courses)} courses approved",
            asyncio.gather(import_accounts(c), catalogue()),
        )
        await step("accounts listed", map_accounts(c))
        await step("wallets open in the ledger", wallets_open(c))
        await step(f"{now.year} policy and allocation approved", allocate(c, now.year))
        await step("funders' top-ups granted", top_ups(c, now))
        await step("enrolments proposed by providers", propose_all(c, 1))
        await step("a provider enrolling too fast, held for review", propose_all(c, 2))
        await step("learners answered, the ledger reserved", answer_all(c))
        await step("completions claimed, attested or contested", claims(c))
        await step("payout run released by finance", pay(c))
        await step("credentials issued", credentials(c))
        say(f"  {api.requests} requests in {time.monotonic() - started:.1f}s")
    return c


def _ends_now(now: datetime, patience: float) -> datetime:
    """When the sessions being completed end: in a few seconds, while the learners are
    enrolled in them (a completion is claimed once its session is over). Enrolling needs a
    session that ends today or later, so close to midnight (UTC) they end just after it."""
    ends = now + timedelta(seconds=10)
    if (now + timedelta(seconds=patience * 3)).date() != ends.date():
        ends = datetime.combine(ends.date() + timedelta(days=1), datetime.min.time(), UTC)
        ends += timedelta(seconds=5)
    return ends


async def _next_cohort(api: Api, seed: int, now: datetime) -> tuple[int, str]:
    for number in range(1, MAX_COHORTS + 1):
        provider_id = await first_provider(api, providers(seed, number, 1)[0], now.date())
        if provider_id is not None:
            return number, provider_id
    raise DemoError(f"{MAX_COHORTS} cohorts of seed {seed} exist already: use another --seed")


def summary(c: Cohort, url: str) -> str:
    lines = [f"cohort {c.number} seeded:"]
    lines += [f"  {name}: {value}" for name, value in sorted(c.counts.items())]
    lines.append(f"  SEPA file of a released payout: {'fetched' if c.sepa_checked else 'none'}")
    by_index = {p.index: p for p in c.people}
    certified = [c.plan.proposals[i] for i in sorted(c.credentialed)]
    waiting = [
        p
        for i, p in enumerate(c.plan.proposals)
        if c.enrolments.get(i, {}).get("status") == "awaiting_learner_confirmation"
    ]
    for title, props in (
        ("a learner with a credential", certified),
        ("a learner with a proposal to answer", waiting),
    ):
        if props and c.account(props[0]):
            person = by_index[props[0].learner.index]
            lines.append(
                f"{title}: account {c.account(props[0])}, national id {person.national_id} "
                f"({person.given_name} {person.family_name}, {person.region.agency_id}); "
                f"token: .venv/bin/ila token learner --sub {c.account(props[0])}"
            )
    lines.append(
        f"a provider: {c.provider_ids[0]} ({c.plan.providers[0].name}); "
        f"token: .venv/bin/ila token provider --provider-id {c.provider_ids[0]}"
    )
    agencies = ", ".join(r.agency_id for r in REGIONS)
    lines.append(f"agencies: {agencies}; token: .venv/bin/ila token agency --agency-id ft-idf")
    lines.append(f"the public registry: {url}/registry   the API: {url}/docs")
    lines.append(
        f"a learner's pages: {url}/me (sign in with a national id above: at the test "
        'provider\'s form, claims {"national_id": "<national id>"})'
    )
    lines.append(
        f"the dashboard: {url}/dashboard (with a bearer token: .venv/bin/ila token admin)   "
        f"the e-mails sent: {url}/dev/mail   a credential check: {url}/verify"
    )
    return "\n".join(lines)


def demo(
    url: Annotated[str, typer.Option(help="the running system")] = "http://127.0.0.1:8000",
    learners_count: Annotated[
        int, typer.Option("--learners", min=10, max=100_000, help="account holders to open")
    ] = 3000,
    seed: Annotated[int, typer.Option(help="the same seed gives the same country")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="requests in flight")] = 16,
) -> None:
    """Seed a small, realistic country into the running system (make run), through its
    public API with development tokens; run again to add a further cohort."""
    try:
        cohort = asyncio.run(
            seed_country(
                url.rstrip("/"),
                count=learners_count,
                seed=seed,
                concurrency=concurrency,
                settings=get_settings(),
                say=typer.echo,
            )
        )
    except DemoError as exc:
        typer.echo(f"ila demo: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(summary(cohort, url.rstrip("/")))
