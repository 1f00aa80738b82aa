"""The accounts rules with no database: given an account and what is asked, the new state
and its events, or the refusal (with the status and code the one handler answers)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, get_args

import pytest

from services.accounts.commands import OpenAccount, UpdateProfile
from services.accounts.domain import accounts as domain
from services.accounts.domain.accounts import Account, Action, Status, WorkingAge
from services.accounts.domain.errors import (
    AccountError,
    AccountExists,
    BadHeader,
    InvalidTransition,
    ManagedByAnotherAgency,
    OutsideWorkingAge,
)
from services.accounts.domain.identity import national_id_hash
from shared.errors import STATUS_OF_KIND, DomainError
from shared.events.accounts import (
    AccountClosed,
    AccountProfileUpdated,
    AccountReinstated,
    AccountSuspended,
    AccountTransferred,
    PersonalDataErased,
)

NOW = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
TODAY = NOW.date()
AGES = WorkingAge(18, 67)
ACCOUNT_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


def account(status: Status = "active", **changes: Any) -> Account:
    fields: dict[str, Any] = {
        "account_id": ACCOUNT_ID,
        "agency_id": "pes-fr",
        "status": status,
        "qualification_level": 3,
        "employment_status": "unemployed",
        "need_tier": "high",
        "need_flags": ("disability",),
    }
    fields.update(changes)
    return Account(**fields)


def open_command(birth_date: date, **changes: Any) -> OpenAccount:
    body: dict[str, Any] = {
        "national_id": "FR 123 456",
        "birth_date": birth_date,
        "country": "FR",
        "region": "Bretagne",
        "qualification_level": 2,
        "employment_status": "employed",
        "need_flags": ["low_literacy", "disability", "low_literacy"],
        "personal": {"given_name": "Ana", "family_name": "Silva"},
    }
    body.update(changes)
    return OpenAccount.model_validate(body)


def answer(err: DomainError) -> tuple[int, dict[str, Any]]:
    """The status and the extra members the one exception handler answers ``err`` with."""
    return STATUS_OF_KIND[err.problem_kind()], err.problem_extra()


# --- opening: working age -------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth_date", "age"),
    [
        (date(2008, 6, 1), 18),  # the 18th birthday is today
        (date(1959, 6, 2), 66),
        (date(1958, 6, 2), 67),  # the 68th birthday is tomorrow
        (date(1958, 6, 1), None),  # 68 today
        (date(2008, 6, 2), None),  # 18 tomorrow
        (date(2026, 6, 2), None),  # not born yet
    ],
)
def test_working_age_is_inclusive_of_both_bounds(birth_date: date, age: int | None) -> None:
    if age is not None:
        assert domain.age_on(birth_date, TODAY) == age
        domain.check_working_age(birth_date, TODAY, AGES)
        return
    with pytest.raises(OutsideWorkingAge):
        domain.check_working_age(birth_date, TODAY, AGES)


def test_a_leap_day_birthday_comes_of_age_on_the_first_of_march() -> None:
    born = date(2008, 2, 29)
    assert domain.age_on(born, date(2026, 2, 28)) == 17
    assert domain.age_on(born, date(2026, 3, 1)) == 18


def test_outside_working_age_answers_422_naming_birth_date() -> None:
    with pytest.raises(OutsideWorkingAge) as err:
        domain.open_account(ACCOUNT_ID, open_command(date(2010, 1, 1)), "pes-fr", NOW, AGES)
    assert err.value.detail == "birth_date gives age 16, outside working age 18 to 67"
    status, extra = answer(err.value)
    assert status == 422
    assert extra["errors"] == [
        {
            "field": "birth_date",
            "in": "body",
            "message": err.value.detail,
            "type": "outside_working_age",
        }
    ]
    with pytest.raises(OutsideWorkingAge) as future:
        domain.check_working_age(date(2030, 1, 1), TODAY, AGES)
    assert future.value.detail == "birth_date lies in the future"


def test_the_working_age_bounds_are_configurable() -> None:
    born = date(1960, 1, 1)  # 66
    domain.check_working_age(born, TODAY, AGES)
    with pytest.raises(OutsideWorkingAge, match="outside working age 16 to 65"):
        domain.check_working_age(born, TODAY, WorkingAge(16, 65))


def test_opening_gives_an_active_account_and_an_event_without_personal_data() -> None:
    cmd = open_command(date(1985, 5, 12))
    opened, event = domain.open_account(ACCOUNT_ID, cmd, "pes-fr", NOW, AGES)
    assert opened == Account(
        account_id=ACCOUNT_ID,
        agency_id="pes-fr",
        status="active",
        qualification_level=2,
        employment_status="employed",
        need_tier="high",
        need_flags=("disability", "low_literacy"),  # sorted, once each
    )
    assert event.account_id == ACCOUNT_ID
    assert event.agency_id == "pes-fr" and event.opened_at == NOW
    # the event carries the tier the flags give, never the flags, the birth date or where
    # the person lives
    assert event.profile.need_tier == "high"
    published = event.model_dump_json()
    for personal in ("Ana", "Silva", "123", "disability", "low_literacy", "1985", "Bretagne"):
        assert personal not in published


@pytest.mark.parametrize(
    ("flags", "tier"),
    [
        ([], "standard"),
        (["low_literacy"], "priority"),
        (["rural", "single_parent"], "priority"),
        (["disability"], "high"),
        (["rural", "disability"], "high"),
    ],
)
def test_the_need_tier_of_a_set_of_flags(flags: list[str], tier: str) -> None:
    opened, event = domain.open_account(
        ACCOUNT_ID, open_command(date(1985, 5, 12), need_flags=flags), "pes-fr", NOW, AGES
    )
    assert opened.need_tier == tier and event.profile.need_tier == tier


# --- a person with an account already ---------------------------------------------------


def test_an_existing_account_is_named_only_to_the_agency_managing_it() -> None:
    existing = uuid.uuid4()
    mine = domain.already_open(existing, managed_by="pes-fr", asked_by="pes-fr")
    assert isinstance(mine, AccountExists)
    assert answer(mine) == (409, {"code": "account_exists", "account_id": str(existing)})
    assert str(existing) in mine.detail

    theirs = domain.already_open(existing, managed_by="pes-be", asked_by="pes-fr")
    assert isinstance(theirs, ManagedByAnotherAgency)
    assert answer(theirs) == (409, {"code": "managed_by_another_agency"})
    assert str(existing) not in theirs.detail and "pes-be" not in theirs.detail


def test_the_national_id_hash_ignores_spacing_and_case_but_not_the_pepper() -> None:
    assert national_id_hash("fr 123 456", "pepper") == national_id_hash("FR123456", "pepper")
    assert national_id_hash("FR123456", "pepper") != national_id_hash("FR123457", "pepper")
    assert national_id_hash("FR123456", "pepper") != national_id_hash("FR123456", "other")
    assert "123456" not in national_id_hash("FR123456", "pepper")


# --- the lifecycle ------------------------------------------------------------------------

EVENT_OF = {"suspend": AccountSuspended, "reinstate": AccountReinstated, "close": AccountClosed}
LEGAL: dict[tuple[Status, Action], Status] = {
    ("active", "suspend"): "suspended",
    ("suspended", "reinstate"): "active",
    ("active", "close"): "closed",
    ("suspended", "close"): "closed",
}


@pytest.mark.parametrize("status", get_args(Status))
@pytest.mark.parametrize("action", get_args(Action))
def test_every_lifecycle_move_from_every_state(status: Status, action: Action) -> None:
    before = account(status)
    target = LEGAL.get((status, action))
    if target is None:
        with pytest.raises(InvalidTransition) as err:
            domain.change_status(before, action, "other")
        assert answer(err.value) == (409, {"code": "invalid_transition"})
        return
    after, event = domain.change_status(before, action, "documents_missing")
    assert after == account(target)
    assert isinstance(event, EVENT_OF[action])
    assert (event.account_id, event.reason_code) == (ACCOUNT_ID, "documents_missing")


@pytest.mark.parametrize(
    ("status", "action", "why"),
    [
        ("active", "reinstate", "an account that is active cannot be reinstated"),
        ("closed", "suspend", "an account that is closed cannot be suspended"),
        ("closed", "reinstate", "an account that is closed cannot be reinstated"),
        ("closed", "close", "the account is already closed; closing is final"),
    ],
)
def test_the_refusals_say_why(status: Status, action: Action, why: str) -> None:
    with pytest.raises(InvalidTransition) as err:
        domain.change_status(account(status), action, "other")
    assert err.value.detail == why


def test_transfer_hands_the_account_to_another_agency() -> None:
    after, event = domain.transfer(account("suspended"), "pes-be")
    assert after == account("suspended", agency_id="pes-be")
    assert event == AccountTransferred(
        account_id=ACCOUNT_ID, from_agency_id="pes-fr", to_agency_id="pes-be"
    )


@pytest.mark.parametrize(
    ("before", "to_agency", "why"),
    [
        (account("closed"), "pes-be", "a closed account cannot be transferred"),
        (account("active"), "pes-fr", "the account is already managed by that agency"),
    ],
)
def test_transfer_refused(before: Account, to_agency: str, why: str) -> None:
    with pytest.raises(InvalidTransition) as err:
        domain.transfer(before, to_agency)
    assert err.value.detail == why


# --- the need profile -----------------------------------------------------------------


def test_a_profile_change_keeps_what_it_does_not_name() -> None:
    after, events = domain.update_profile(account(), UpdateProfile(qualification_level=5))
    assert after == account(qualification_level=5)
    assert events == [AccountProfileUpdated(account_id=ACCOUNT_ID, profile=after.profile())]
    assert events[0].profile.model_dump() == {
        "qualification_level": 5,
        "employment_status": "unemployed",
        "need_tier": "high",
        "employer_id": None,
    }


def test_the_employer_is_changed_or_cleared_only_when_named() -> None:
    hired, events = domain.update_profile(account(), UpdateProfile(employer_id="emp-42"))
    assert hired.employer_id == "emp-42" and events[0].profile.employer_id == "emp-42"
    kept, _ = domain.update_profile(hired, UpdateProfile(qualification_level=6))
    assert kept.employer_id == "emp-42"
    left, events = domain.update_profile(hired, UpdateProfile(employer_id=None))
    assert left.employer_id is None and events[0].profile.employer_id is None


def test_need_flags_are_stored_sorted_once_each_and_may_be_cleared() -> None:
    flags = UpdateProfile(need_flags=["rural", "disability", "rural"])
    after, _ = domain.update_profile(account(), flags)
    assert after.need_flags == ("disability", "rural") and after.need_tier == "high"
    lowered, events = domain.update_profile(after, UpdateProfile(need_flags=["rural"]))
    assert lowered.need_tier == "priority" and events[0].profile.need_tier == "priority"
    cleared, events = domain.update_profile(after, UpdateProfile(need_flags=[]))
    assert cleared.need_flags == () and events[0].profile.need_tier == "standard"


def test_a_change_that_names_nothing_changes_nothing() -> None:
    assert domain.update_profile(account("suspended"), UpdateProfile()) == (
        account("suspended"),
        [],
    )


def test_a_closed_accounts_profile_never_changes() -> None:
    for cmd in (UpdateProfile(), UpdateProfile(employment_status="employed")):
        with pytest.raises(InvalidTransition) as err:
            domain.update_profile(account("closed"), cmd)
        assert err.value.detail == "a closed account's profile cannot change"


# --- erasure --------------------------------------------------------------------------


@pytest.mark.parametrize("status", get_args(Status))
def test_erasure_happens_once_whatever_the_status(status: Status) -> None:
    erased, events = domain.erase_personal_data(account(status))
    # the flags go with the personal data; the tier they gave stays (the rules need it)
    assert erased == account(status, erased=True, need_flags=())
    assert events == [PersonalDataErased(account_id=ACCOUNT_ID)]
    assert domain.erase_personal_data(erased) == (erased, [])


# --- every refusal has its answer ---------------------------------------------------------


def test_each_refusal_maps_to_its_status_and_code() -> None:
    cases: list[tuple[AccountError, int, str]] = [
        (OutsideWorkingAge("too young"), 422, "outside_working_age"),
        (InvalidTransition("no"), 409, "invalid_transition"),
        (AccountExists(ACCOUNT_ID), 409, "account_exists"),
        (ManagedByAnotherAgency(), 409, "managed_by_another_agency"),
        (BadHeader("the header lacks column(s): region"), 422, "bad_header"),
    ]
    for err, status, code in cases:
        assert isinstance(err, DomainError)
        assert answer(err)[0] == status and err.code == code, err
    assert answer(BadHeader("no header"))[1]["errors"] == [
        {"field": "header", "in": "body", "message": "no header"}
    ]
