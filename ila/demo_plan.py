"""What happens to whom in a demonstration cohort, decided before any request is sent:
which providers offer which courses and sessions, who is proposed a course, and what each
learner, provider and agency then does. Drawn from the seed, so a cohort is reproducible.

Proportions: about a quarter of the account holders are proposed a course this year (job
seekers more often); half of the proposals are for sessions that end as the demonstration
runs (they are completed and claimed), the rest for sessions in the coming months. Most
learners confirm; some refuse, some cancel within the withdrawal period, some have not
answered yet. Most completions are certified; most learners attest, a few contest.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from ila.demo_data import COURSES, CourseKind, Learner, ProviderPlan, providers, session

PROVIDER_CAP = 28  # proposals per provider: under the hourly velocity rule
VELOCITY = 30  # the payments service's default hourly allowance per provider
FAST_EXTRA = 3  # one provider enrols this many past the rule: the agency sees them held
TRAIN_RATE = {"unemployed": 0.45, "employed": 0.25, "self_employed": 0.2, "inactive": 0.12}

When = Literal["now", "later"]
Outcome = Literal["confirm", "refuse", "wait", "cancel"]
Attest = Literal["attest", "contest", "pending"]


@dataclass
class CoursePlan:
    provider: ProviderPlan
    kind: CourseKind
    now_session: uuid.UUID
    later_session: uuid.UUID
    started_days_ago: int
    later_in_days: int
    seats: dict[When, int] = field(default_factory=lambda: {"now": 0, "later": 0})

    def body(self, today: datetime, ends_now: datetime) -> dict[str, Any]:
        from ila.demo_data import course_body

        start = today.replace(hour=8, minute=0, second=0, microsecond=0)
        now_start = start - timedelta(days=self.started_days_ago)
        later_start = start + timedelta(days=self.later_in_days)
        weeks = max(1, self.kind.hours // 35)
        return course_body(
            self.kind,
            self.provider,
            [
                session(self.now_session, now_start, ends_now, max(12, self.seats["now"] + 4)),
                session(
                    self.later_session,
                    later_start,
                    later_start + timedelta(weeks=weeks, hours=9),
                    max(12, self.seats["later"] + 4),
                ),
            ],
        )


@dataclass
class Proposal:
    learner: Learner
    course: CoursePlan
    when: When
    outcome: Outcome
    wave: int  # 2: proposed after the rest, by the provider that goes too fast
    completion_rate: int = 0
    certified: bool = False
    attest: Attest = "pending"

    @property
    def session_id(self) -> uuid.UUID:
        return self.course.now_session if self.when == "now" else self.course.later_session


@dataclass
class CohortPlan:
    providers: list[ProviderPlan]
    courses: list[CoursePlan]
    proposals: list[Proposal]


def plan(seed: int, cohort: int, people: list[Learner]) -> CohortPlan:
    rng = random.Random(f"plan:{seed}:{cohort}")
    chosen = [p for p in people if rng.random() < TRAIN_RATE[p.employment_status]]
    count = max(6, math.ceil(len(chosen) / (PROVIDER_CAP - 4)) + 1)
    provs = providers(seed, cohort, count)
    courses: list[CoursePlan] = []
    by_provider: dict[int, list[CoursePlan]] = {}
    for p in provs:
        for kind in rng.sample(COURSES, 3):
            course = CoursePlan(
                provider=p,
                kind=kind,
                now_session=_uuid(rng),
                later_session=_uuid(rng),
                started_days_ago=rng.randint(14, 70),
                later_in_days=rng.randint(21, 120),
            )
            courses.append(course)
            by_provider.setdefault(p.index, []).append(course)
    load = {p.index: 0 for p in provs}
    fast = provs[0]
    proposals = []
    for learner in chosen:
        near = [p for p in provs if p.region == learner.region and load[p.index] < _cap(p, fast)]
        anywhere = [p for p in provs if load[p.index] < _cap(p, fast)]
        if not (near or anywhere):
            break
        provider = rng.choice(near or anywhere)
        load[provider.index] += 1
        proposals.append(_proposal(rng, learner, rng.choice(by_provider[provider.index])))
    # the fast provider fills its hour, then goes past the rule: those are held
    picked = {p.index for p in chosen}
    extra = [p for p in people if p.index not in picked][: VELOCITY - load[fast.index] + FAST_EXTRA]
    for learner in extra:
        proposals.append(_proposal(rng, learner, rng.choice(by_provider[fast.index]), wave=2))
    for prop in proposals:
        prop.course.seats[prop.when] += 1
    return CohortPlan(provs, courses, proposals)


def _cap(p: ProviderPlan, fast: ProviderPlan) -> int:
    return PROVIDER_CAP - 8 if p is fast else PROVIDER_CAP


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _proposal(rng: random.Random, learner: Learner, course: CoursePlan, wave: int = 1) -> Proposal:
    when: When = "now" if rng.random() < 0.5 else "later"
    roll = rng.random()
    outcome: Outcome
    if when == "now":
        outcome = "refuse" if roll < 0.08 else "confirm"
    else:
        outcome = "wait" if roll < 0.22 else "refuse" if roll < 0.29 else "confirm"
        if outcome == "confirm" and rng.random() < 0.12:
            outcome = "cancel"
    prop = Proposal(learner, course, when, outcome, wave)
    if when == "now" and outcome == "confirm":
        band = rng.random()
        if band < 0.75:
            prop.completion_rate, prop.certified = rng.randint(80, 100), True
        elif band < 0.92:
            prop.completion_rate = rng.randint(40, 79)
        else:
            prop.completion_rate = rng.randint(10, 39)
        attest = rng.random()
        prop.attest = "attest" if attest < 0.85 else "contest" if attest < 0.9 else "pending"
    return prop
