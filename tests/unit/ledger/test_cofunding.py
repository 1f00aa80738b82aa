"""Co-funding rules as pure rules: which match a reservation, what each pays of its
shortfall, in which order, never past its budget, once per enrolment."""

from __future__ import annotations

import uuid

from services.ledger.commands import ReserveCredits
from services.ledger.domain import WalletState, decide, replay
from services.ledger.domain.cofunding import CofundingRule, covers, grants, lot_id_of, payments
from shared.events.ledger import CourseRef, WalletProfile
from tests.unit.support.ledger import ACCOUNT, COURSE, T0, granted, opened, uid

YEAR = T0.year
IDF = COURSE.model_copy(update={"region": "FR-IDF"})
EMPLOYED = WalletProfile(qualification_level=4, employment_status="employed", employer_id="e-1")


def rule(
    name: str, funder: str, kind: str = "region", rank: int = 1, **terms: object
) -> CofundingRule:
    return CofundingRule(
        rule_id=uid(name),
        funder_id=funder,
        funder_kind=kind,
        year=YEAR,
        rank=rank,
        **terms,  # type: ignore[arg-type]
    )


def reserve(amount: int, course: CourseRef = IDF, up_to: bool = True) -> ReserveCredits:
    return ReserveCredits(
        account_id=ACCOUNT,
        reservation_id=uid("r1"),
        enrolment_id=uid("e1"),
        amount=amount,
        course=course,
        up_to=up_to,
    )


def wallet(credit: int, profile: WalletProfile | None = EMPLOYED) -> WalletState:
    return replay([*opened(profile=profile), *([granted("own", credit)] if credit else [])])


def left(*rules: CofundingRule, amount: int = 1_000_000) -> dict[uuid.UUID, int]:
    return {r.budget_id: amount for r in rules}


def test_a_matching_rule_pays_its_share_of_the_shortfall_within_its_cap() -> None:
    state = wallet(3_000)
    half = rule("half", "region-idf", share=50, region="FR-IDF")
    (paid,) = payments(state, reserve(10_000), [half], left(half), T0)
    assert paid.amount == 3_500  # half of the 7,000 the learner's credit does not cover
    capped = rule("capped", "region-idf", share=100, cap=2_000, region="FR-IDF")
    assert [p.amount for p in payments(state, reserve(10_000), [capped], left(capped), T0)] == [
        2_000
    ]


def test_rules_pay_in_order_employer_first_and_never_more_than_the_shortfall() -> None:
    state = wallet(3_000)
    region = rule("region", "region-idf", "region", rank=1, region="FR-IDF")
    state_rule = rule("state", "state", "state", rank=0, share=100)
    employer = rule("employer", "emp", "employer", rank=9, share=40, employer_id="e-1")
    paid = payments(
        state,
        reserve(10_000),
        [region, state_rule, employer],
        left(region, state_rule, employer),
        T0,
    )
    assert [(p.rule.funder_id, p.amount) for p in paid] == [("emp", 2_800), ("region-idf", 4_200)]


def test_a_spent_budget_pays_nothing_and_one_nearly_spent_pays_what_is_left() -> None:
    state = wallet(3_000)
    r = rule("r", "region-idf", region="FR-IDF", share=100)
    assert payments(state, reserve(10_000), [r], {r.budget_id: 0}, T0) == []
    assert payments(state, reserve(10_000), [r], {}, T0) == []  # no budget at all
    assert [p.amount for p in payments(state, reserve(10_000), [r], {r.budget_id: 500}, T0)] == [
        500
    ]


def test_criteria_that_do_not_hold_leave_the_enrolment_alone() -> None:
    state = wallet(0, profile=WalletProfile(qualification_level=4, employment_status="employed"))
    cases = [
        rule("other-region", "r", region="BE-BRU", share=100),
        rule("employer", "e", "employer", employer_id="e-1", share=100),  # no employer noted
        rule("field", "f", isced_prefix="07", share=100),
        rule("eqf", "f", eqf_min=6, eqf_max=8, share=100),
        CofundingRule(
            rule_id=uid("next-year"),
            funder_id="s",
            funder_kind="state",
            year=YEAR + 1,
            rank=1,
            share=100,
        ),
    ]
    for r in cases:
        assert payments(state, reserve(5_000), [r], left(r), T0) == [], r
    fits = rule("fits", "f", isced_prefix="06", eqf_min=4, eqf_max=5, share=100)
    assert [p.amount for p in payments(state, reserve(5_000), [fits], left(fits), T0)] == [5_000]


def test_no_shortfall_no_cofunding_and_a_rule_pays_an_enrolment_once() -> None:
    r = rule("r", "region-idf", region="FR-IDF", share=100)
    assert payments(wallet(10_000), reserve(10_000), [r], left(r), T0) == []
    state = wallet(1_000)
    cmd = reserve(4_000)
    (grant,) = grants(cmd, payments(state, cmd, [r], left(r), T0), T0)
    after = replay(decide(state, grant, T0), state)
    assert lot_id_of(r.rule_id, cmd.enrolment_id) in after.lots
    again = cmd.model_copy(update={"reservation_id": uid("r2")})
    assert payments(after, again, [r], left(r), T0) == []


def test_the_cofunding_lot_is_reserved_first_and_the_learner_pays_nothing() -> None:
    state = wallet(3_000)
    r = rule("r", "region-idf", region="FR-IDF", share=100)
    cmd = reserve(10_000, up_to=True)
    paid = payments(state, cmd, [r], left(r), T0)
    (grant,) = grants(cmd, paid, T0)
    assert grant.reason_code == "cofunding" and grant.earmark is not None
    assert grant.earmark.course_ids == (IDF.course_id,) and grant.year == YEAR
    with_lot = replay(decide(state, grant, T0), state)
    (reservation,) = decide(with_lot, cmd, T0)
    assert reservation.amount == 10_000  # type: ignore[attr-defined]
    assert reservation.allocations[0].lot_id == grant.lot_id  # type: ignore[attr-defined]


def test_without_up_to_only_a_cofunding_that_closes_the_shortfall_is_granted() -> None:
    state = wallet(3_000)
    half = rule("half", "region-idf", region="FR-IDF", share=50)
    cmd = reserve(10_000, up_to=False)
    paid = payments(state, cmd, [half], left(half), T0)
    assert not covers(cmd, 7_000, paid)
    assert covers(cmd.model_copy(update={"up_to": True}), 7_000, paid)
    full = rule("full", "region-idf", region="FR-IDF", share=100)
    assert covers(cmd, 7_000, payments(state, cmd, [full], left(full), T0))
