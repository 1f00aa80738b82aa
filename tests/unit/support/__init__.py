"""Support of the unit tier: the ledger's plain reference model, a hypothesis state machine
that runs random sequences of ledger commands (the unit test drives it through the domain,
the integration test through the store); and a driver's exception as SQLAlchemy raises it.

After every step: the wallet folded incrementally, the wallet replayed from the whole stream
(after a trip through the CloudEvents envelope's bytes) and a reference model written here
with plain dicts and arithmetic (it never calls the domain) must agree on every amount; the
invariants must hold; and the same command delivered again must change nothing.

The identity checked (see ``services.ledger.domain.state``)::

    granted_total + reversed_capture_total
        == available + reserved + spent_total + expired_total + reversed_grant_total
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from services.ledger.commands import (
    CaptureReservation,
    CaptureTarget,
    CloseWallet,
    Command,
    ExpireLots,
    ExpireReservations,
    GrantCredits,
    GrantTarget,
    OpenWallet,
    ReinstateWallet,
    ReleaseReservation,
    ReserveCredits,
    ReverseEntry,
    SuspendWallet,
)
from services.ledger.domain import (
    LedgerError,
    WalletState,
    assert_invariants,
    decide,
    evolve,
    replay,
)
from shared.events.base import Envelope
from shared.events.ledger import CourseRef, Earmark, LedgerEvent

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000aa")
START = datetime(2025, 1, 1, tzinfo=UTC)

COURSES = {
    "web": CourseRef(course_id=uuid.uuid4(), isced_field="0613", eqf_level=5, tags=("digital",)),
    "care": CourseRef(course_id=uuid.uuid4(), isced_field="0913", eqf_level=4, tags=("health",)),
    "weld": CourseRef(course_id=uuid.uuid4(), isced_field="0715", eqf_level=3),
}
EARMARKS = {
    "ict": Earmark(isced_fields=("06",)),
    "level-4": Earmark(eqf_levels=(4,)),
    "web-only": Earmark(course_ids=(COURSES["web"].course_id,)),
    "digital-5": Earmark(tags=("digital",), eqf_levels=(5,)),
}
# Written out by hand, not computed: which earmark lets which course spend.
MATCHES = {("ict", "web"), ("level-4", "care"), ("web-only", "web"), ("digital-5", "web")}


# --- the reference model: plain data, plain arithmetic -------------------------------------


@dataclass
class RefLot:
    seq: int
    granted_at: datetime
    expires_at: datetime | None
    earmark: str | None
    amount: int
    remaining: int
    held: int = 0
    spent: int = 0
    refunded: int = 0
    expired: int = 0
    revoked: int = 0
    reversed: bool = False


@dataclass
class RefReservation:
    enrolment: uuid.UUID
    amount: int
    alloc: list[tuple[uuid.UUID, int]]
    expires_at: datetime
    status: str = "active"
    captured: int = 0
    captured_alloc: list[tuple[uuid.UUID, int]] = field(default_factory=list)
    reversed: bool = False


class Refused(Exception):
    def __init__(self, code: str) -> None:
        self.code = code


@dataclass
class Reference:
    status: str = "open"
    lots: dict[uuid.UUID, RefLot] = field(default_factory=dict)
    reservations: dict[uuid.UUID, RefReservation] = field(default_factory=dict)
    rejected: dict[uuid.UUID, str] = field(default_factory=dict)
    years: set[int] = field(default_factory=set)
    granted: int = 0
    spent: int = 0
    expired: int = 0
    reversed_grants: int = 0
    reversed_captures: int = 0

    def free(self, lot_id: uuid.UUID) -> int:
        lot = self.lots[lot_id]
        return lot.remaining - lot.held

    def due(self, lot_id: uuid.UUID, now: datetime) -> bool:
        expires_at = self.lots[lot_id].expires_at
        return expires_at is not None and expires_at <= now

    def expire_free(self, lot_ids: list[uuid.UUID], now: datetime) -> None:
        for lot_id in lot_ids:
            amount = self.free(lot_id)
            if self.due(lot_id, now) and amount > 0:
                self.lots[lot_id].remaining -= amount
                self.lots[lot_id].expired += amount
                self.expired += amount

    def grant(
        self, lot_id: uuid.UUID, cmd: GrantCredits, earmark: str | None, now: datetime
    ) -> None:
        if lot_id in self.lots or (cmd.kind == "statutory" and cmd.year in self.years):
            return
        if self.status == "closed":
            raise Refused("wallet_closed")
        self.lots[lot_id] = RefLot(
            seq=len(self.lots),
            granted_at=now,
            expires_at=cmd.expires_at,
            earmark=earmark,
            amount=cmd.amount,
            remaining=cmd.amount,
        )
        if cmd.kind == "statutory" and cmd.year is not None:
            self.years.add(cmd.year)
        self.granted += cmd.amount

    def reserve(self, cmd: ReserveCredits, course: str, now: datetime) -> None:
        if cmd.reservation_id in self.reservations or cmd.reservation_id in self.rejected:
            return
        for r in self.reservations.values():
            if r.enrolment == cmd.enrolment_id and r.status in ("active", "captured"):
                return
        usable = []
        for lot_id, lot in self.lots.items():
            if self.free(lot_id) <= 0 or self.due(lot_id, now):
                continue
            if lot.earmark is not None and (lot.earmark, course) not in MATCHES:
                continue
            never = datetime(9999, 1, 1, tzinfo=UTC)
            key = (lot.earmark is None, lot.expires_at or never, lot.granted_at, lot.seq)
            usable.append((key, lot_id))
        usable.sort()
        total = sum(self.free(lot_id) for _, lot_id in usable)
        if self.status == "closed":
            self.rejected[cmd.reservation_id] = "account_closed"
        elif self.status == "suspended":
            self.rejected[cmd.reservation_id] = "account_suspended"
        elif total == 0 or (total < cmd.amount and not cmd.up_to):
            self.rejected[cmd.reservation_id] = "insufficient_credit"
        if cmd.reservation_id in self.rejected:
            return
        left = min(total, cmd.amount)
        alloc = []
        for _, lot_id in usable:
            take = min(left, self.free(lot_id))
            if take > 0:
                alloc.append((lot_id, take))
                self.lots[lot_id].held += take
                left -= take
        assert cmd.expires_at is not None
        self.reservations[cmd.reservation_id] = RefReservation(
            enrolment=cmd.enrolment_id,
            amount=sum(a for _, a in alloc),
            alloc=alloc,
            expires_at=cmd.expires_at,
        )

    def _unhold(self, r: RefReservation) -> None:
        for lot_id, amount in r.alloc:
            self.lots[lot_id].held -= amount

    def capture(self, reservation_id: uuid.UUID, amount: int, now: datetime) -> None:
        r = self.reservations[reservation_id]
        if r.status == "captured":
            if r.captured != amount:
                raise Refused("id_conflict")
            return
        if r.status != "active":
            raise Refused("reservation_not_active")
        if amount > r.amount:
            raise Refused("capture_exceeds_reservation")
        self._unhold(r)
        left = amount
        given_back = []
        for lot_id, held in r.alloc:
            take = min(left, held)
            left -= take
            if take:
                r.captured_alloc.append((lot_id, take))
                self.lots[lot_id].remaining -= take
                self.lots[lot_id].spent += take
            if held > take:
                given_back.append(lot_id)
        r.status, r.captured = "captured", amount
        self.spent += amount
        self.expire_free(given_back, now)

    def release(self, reservation_id: uuid.UUID, now: datetime, status: str = "released") -> None:
        r = self.reservations[reservation_id]
        if r.status in ("released", "expired"):
            return
        if r.status == "captured":
            raise Refused("reservation_not_active")
        self._unhold(r)
        r.status = status
        self.expire_free([lot_id for lot_id, _ in r.alloc], now)

    def expire_reservations(self, now: datetime) -> None:
        due = [
            rid
            for rid, r in self.reservations.items()
            if r.status == "active" and r.expires_at <= now
        ]
        for rid in due:
            self._unhold(self.reservations[rid])
            self.reservations[rid].status = "expired"
        self.expire_free([lot_id for rid in due for lot_id, _ in self.reservations[rid].alloc], now)

    def expire_lots(self, now: datetime) -> None:
        self.expire_free(list(self.lots), now)

    def reverse_capture(self, reservation_id: uuid.UUID, now: datetime) -> None:
        r = self.reservations[reservation_id]
        if r.reversed:
            return
        if r.status != "captured":
            raise Refused("not_captured")
        for lot_id, amount in r.captured_alloc:
            self.lots[lot_id].remaining += amount
            self.lots[lot_id].refunded += amount
        r.reversed = True
        self.reversed_captures += r.captured
        self.expire_free([lot_id for lot_id, _ in r.captured_alloc], now)

    def reverse_grant(self, lot_id: uuid.UUID) -> None:
        lot = self.lots[lot_id]
        if lot.reversed:
            return
        if lot.held:
            raise Refused("lot_reserved")
        if lot.spent - lot.refunded:
            raise Refused("lot_spent")
        if lot.remaining == 0:
            raise Refused("nothing_to_reverse")
        lot.revoked += lot.remaining
        self.reversed_grants += lot.remaining
        lot.remaining = 0
        lot.reversed = True

    def set_status(self, action: str) -> None:
        if self.status == "closed":
            return
        self.status = {"suspend": "suspended", "reinstate": "open", "close": "closed"}[action]


GRANT_TERMS = st.tuples(
    st.integers(1, 20_000),  # amount
    # Lots expire within weeks, reservations hold for up to two months: credit reserved on a
    # lot that expires before the reservation ends is the case most worth exercising.
    st.none() | st.integers(1, 20),  # expires in days
    st.none() | st.sampled_from(sorted(EARMARKS)),
    # Mostly top-ups: after the first statutory grant of a year, the rest are no-ops.
    st.sampled_from([None, None, None, None, None, 2024, 2025]),  # statutory year
)

# --- the machine ------------------------------------------------------------------------------


def _walk_for_floats(value: Any, where: str) -> None:
    assert not isinstance(value, float), f"float in {where}"
    if isinstance(value, dict):
        for k, v in value.items():
            _walk_for_floats(v, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for v in value:
            _walk_for_floats(v, where)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.state = WalletState()
        self.wire: list[LedgerEvent] = []  # every event so far, decoded from its bytes
        self.ref = Reference()
        self.lot_ids: list[uuid.UUID] = []
        self.reservation_ids: list[uuid.UUID] = []
        self.enrolments = [uuid.uuid4() for _ in range(4)]

    # Every command goes through here: decide, fold, redeliver, and compare with the reference.
    def run(self, command: Command, expected: Callable[[], None]) -> None:
        try:
            expected()
            expected_code = None
        except Refused as refused:
            expected_code = refused.code
        try:
            events = decide(self.state, command, self.now)
        except LedgerError as error:
            assert error.code == expected_code, (error.code, expected_code)
            return
        assert expected_code is None, f"expected {expected_code}, decided {events}"
        for event in events:
            _walk_for_floats(event.model_dump(), type(event).__name__)
            self.state = evolve(self.state, event)
            # What an auditor replays is the bytes on the topic, not our objects.
            received = Envelope.from_bytes(Envelope.wrap(event, source="ledger").to_bytes())
            decoded = received.payload()
            assert isinstance(decoded, LedgerEvent) and decoded == event
            self.wire.append(decoded)
        # The same command delivered again changes nothing.
        assert decide(self.state, command, self.now) == []

    @initialize(seed=st.lists(GRANT_TERMS, max_size=4))
    def open_wallet(self, seed: list[tuple[int, int | None, str | None, int | None]]) -> None:
        # Start with some credit, so that every run has something to reserve and spend.
        self.run(OpenWallet(account_id=ACCOUNT), lambda: None)
        for terms in seed:
            self.give(*terms)

    @rule(terms=GRANT_TERMS)
    def grant(self, terms: tuple[int, int | None, str | None, int | None]) -> None:
        self.give(*terms)

    def give(
        self, amount: int, expires_in_days: int | None, earmark: str | None, year: int | None
    ) -> None:
        lot_id = uuid.uuid4()
        expires_at = None if expires_in_days is None else self.now + timedelta(days=expires_in_days)
        command = GrantCredits(
            account_id=ACCOUNT,
            lot_id=lot_id,
            amount=amount,
            funder_id="state" if year else "region",
            kind="statutory" if year else "top_up",
            year=year,
            expires_at=expires_at,
            earmark=EARMARKS[earmark] if earmark else None,
        )
        now = self.now
        self.run(command, lambda: self.ref.grant(lot_id, command, earmark, now))
        self.lot_ids.append(lot_id)

    @rule(
        data=st.data(),
        course=st.sampled_from(sorted(COURSES)),
        up_to=st.booleans(),
        timeout_days=st.integers(1, 60) | st.integers(20, 60),
        enrolment=st.integers(0, 3),
    )
    def reserve(
        self, data: st.DataObject, course: str, up_to: bool, timeout_days: int, enrolment: int
    ) -> None:
        # Mostly an amount the wallet could cover (so that captures and releases have
        # something to work on), sometimes anything.
        usable = sum(lot.remaining - lot.held for lot in self.ref.lots.values())
        amount = data.draw(st.integers(1, max(1, usable)) | st.integers(1, 40_000))
        reservation_id = uuid.uuid4()
        command = ReserveCredits(
            account_id=ACCOUNT,
            reservation_id=reservation_id,
            enrolment_id=self.enrolments[enrolment],
            amount=amount,
            course=COURSES[course],
            up_to=up_to,
            expires_at=self.now + timedelta(days=timeout_days),
        )
        now = self.now
        self.run(command, lambda: self.ref.reserve(command, course, now))
        self.reservation_ids.append(reservation_id)

    def pick_reservation(self, data: st.DataObject, preferred_status: str) -> uuid.UUID:
        """Mostly a reservation in ``preferred_status`` (the interesting case), sometimes any."""
        preferred = [
            rid for rid, r in self.ref.reservations.items() if r.status == preferred_status
        ]
        if preferred and data.draw(st.integers(0, 4)) > 0:
            return data.draw(st.sampled_from(preferred))
        return data.draw(st.sampled_from(self.reservation_ids))

    def maybe_wait_for_a_lot_to_expire(self, data: st.DataObject, lot_ids: list[uuid.UUID]) -> None:
        """Sometimes let the clock reach the expiry of one of ``lot_ids`` first: credit that
        comes back to a lot past its expiry must expire with it."""
        ahead = sorted(
            {
                expires_at
                for lot_id in lot_ids
                if (expires_at := self.ref.lots[lot_id].expires_at) and expires_at > self.now
            }
        )
        wait = data.draw(st.booleans())
        if ahead and wait:
            self.now = data.draw(st.sampled_from(ahead))

    @precondition(lambda self: self.reservation_ids)
    @rule(data=st.data(), full=st.booleans())
    def capture(self, data: st.DataObject, full: bool) -> None:
        reservation_id = self.pick_reservation(data, "active")
        held = self.ref.reservations.get(reservation_id)
        if held is None:  # it was rejected: nothing to capture
            return
        self.maybe_wait_for_a_lot_to_expire(data, [lot_id for lot_id, _ in held.alloc])
        ceiling = max(held.amount, 1)
        amount = held.amount if full and held.amount else data.draw(st.integers(1, ceiling + 1))
        command = CaptureReservation(
            account_id=ACCOUNT, reservation_id=reservation_id, amount=amount
        )
        now = self.now
        self.run(command, lambda: self.ref.capture(reservation_id, amount, now))

    @precondition(lambda self: self.reservation_ids)
    @rule(data=st.data(), cancelled=st.booleans())
    def release(self, data: st.DataObject, cancelled: bool) -> None:
        reservation_id = self.pick_reservation(data, "active")
        if reservation_id not in self.ref.reservations:
            return
        alloc = self.ref.reservations[reservation_id].alloc
        self.maybe_wait_for_a_lot_to_expire(data, [lot_id for lot_id, _ in alloc])
        command = ReleaseReservation(
            account_id=ACCOUNT,
            reservation_id=reservation_id,
            reason="cancelled" if cancelled else "released",
        )
        now = self.now
        self.run(command, lambda: self.ref.release(reservation_id, now))

    # Whole days, like the expiries: the clock often lands exactly on an expiry instant.
    @rule(days=st.integers(1, 10))
    def advance_clock(self, days: int) -> None:
        self.now += timedelta(days=days)

    # Straight to the next instant something expires: the boundary where most ledger bugs
    # hide (credit reserved on a lot that has just expired, a sweep exactly at the expiry).
    @rule(data=st.data())
    def advance_to_an_expiry(self, data: st.DataObject) -> None:
        ahead = sorted(
            {lot.expires_at for lot in self.ref.lots.values() if lot.expires_at}
            | {r.expires_at for r in self.ref.reservations.values() if r.status == "active"}
        )
        ahead = [t for t in ahead if t > self.now]
        if ahead:
            self.now = data.draw(st.sampled_from(ahead[:3]))

    @rule(lots=st.booleans())
    def sweep(self, lots: bool) -> None:
        now = self.now
        if lots:
            self.run(ExpireLots(account_id=ACCOUNT), lambda: self.ref.expire_lots(now))
        else:
            self.run(
                ExpireReservations(account_id=ACCOUNT), lambda: self.ref.expire_reservations(now)
            )

    @precondition(lambda self: self.reservation_ids)
    @rule(data=st.data())
    def reverse_capture(self, data: st.DataObject) -> None:
        reservation_id = self.pick_reservation(data, "captured")
        if reservation_id not in self.ref.reservations:
            return
        alloc = self.ref.reservations[reservation_id].captured_alloc
        self.maybe_wait_for_a_lot_to_expire(data, [lot_id for lot_id, _ in alloc])
        command = ReverseEntry(
            account_id=ACCOUNT,
            target=CaptureTarget(reservation_id=reservation_id),
            reason_code="fraud",
            actor="admin",
        )
        now = self.now
        self.run(command, lambda: self.ref.reverse_capture(reservation_id, now))

    @precondition(lambda self: self.lot_ids)
    @rule(data=st.data())
    def reverse_grant(self, data: st.DataObject) -> None:
        lot_id = data.draw(st.sampled_from(self.lot_ids))
        if lot_id not in self.ref.lots:  # a statutory grant for a year already granted
            return
        command = ReverseEntry(
            account_id=ACCOUNT,
            target=GrantTarget(lot_id=lot_id),
            reason_code="duplicate_grant",
            actor="admin",
        )
        self.run(command, lambda: self.ref.reverse_grant(lot_id))

    # Reinstating more often than suspending: a suspended wallet rejects every reservation.
    @rule(suspend=st.sampled_from([True, False, False]))
    def suspend_or_reinstate(self, suspend: bool) -> None:
        if suspend:
            self.run(SuspendWallet(account_id=ACCOUNT), lambda: self.ref.set_status("suspend"))
        else:
            self.run(ReinstateWallet(account_id=ACCOUNT), lambda: self.ref.set_status("reinstate"))

    # Closing ends most activity, so only late in a run: the closed-wallet rules still get
    # exercised without starving everything else.
    @precondition(lambda self: len(self.wire) > 20)
    @rule()
    def close(self) -> None:
        self.run(CloseWallet(account_id=ACCOUNT), lambda: self.ref.set_status("close"))

    # --- after every step ---------------------------------------------------------------------

    @invariant()
    def replay_equals_the_incremental_fold(self) -> None:
        assert replay(self.wire) == self.state
        assert self.state.version == len(self.wire)

    @invariant()
    def the_reference_agrees(self) -> None:
        s, ref = self.state, self.ref
        assert s.status == ref.status
        assert set(s.lots) == set(ref.lots)
        for lot_id, lot in s.lots.items():
            r = ref.lots[lot_id]
            assert (
                lot.remaining,
                lot.reserved,
                lot.spent,
                lot.refunded,
                lot.expired,
                lot.revoked,
            ) == (
                r.remaining,
                r.held,
                r.spent,
                r.refunded,
                r.expired,
                r.revoked,
            ), lot_id
        assert set(s.reservations) == set(ref.reservations)
        for reservation_id, res in s.reservations.items():
            rr = ref.reservations[reservation_id]
            assert res.status == rr.status
            assert res.amount == rr.amount
            assert [(a.lot_id, a.amount) for a in res.allocations] == rr.alloc
            assert [(a.lot_id, a.amount) for a in res.captured_allocations] == rr.captured_alloc
            assert (res.reversed_version is not None) == rr.reversed
        assert s.rejected == set(ref.rejected)
        assert (
            s.granted_total,
            s.spent_total,
            s.expired_total,
            s.reversed_grant_total,
            s.reversed_capture_total,
        ) == (ref.granted, ref.spent, ref.expired, ref.reversed_grants, ref.reversed_captures)
        ref_reserved = sum(r.amount for r in ref.reservations.values() if r.status == "active")
        ref_available = sum(lot.remaining - lot.held for lot in ref.lots.values())
        assert (s.available, s.reserved) == (ref_available, ref_reserved)

    @invariant()
    def amounts_are_whole_non_negative_and_conserved(self) -> None:
        s = self.state
        assert_invariants(s)
        for value in (s.available, s.reserved, s.granted_total, s.spent_total, s.expired_total):
            assert type(value) is int and value >= 0
        for lot in s.lots.values():
            assert type(lot.remaining) is int
            assert 0 <= lot.reserved <= lot.remaining
        assert s.granted_total + s.reversed_capture_total == (
            s.available + s.reserved + s.spent_total + s.expired_total + s.reversed_grant_total
        )
        assert s.net_granted == s.available + s.reserved + s.net_spent + s.expired_total


def wrapped_by_sqlalchemy(driver_exc: BaseException) -> BaseException:
    """The exception as SQLAlchemy's asyncpg dialect raises it around the driver's."""
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
    from sqlalchemy.exc import DBAPIError

    dbapi = AsyncAdapt_asyncpg_dbapi(__import__("asyncpg"))
    translated = dbapi._asyncpg_error_translate.get(type(driver_exc))  # type: ignore[attr-defined]
    adapted: BaseException
    if translated is None:
        for base in type(driver_exc).__mro__:
            translated = dbapi._asyncpg_error_translate.get(base)  # type: ignore[attr-defined]
            if translated is not None:
                break
    adapted = (translated or dbapi.Error)(str(driver_exc))
    adapted.__cause__ = driver_exc
    if hasattr(driver_exc, "sqlstate"):
        adapted.sqlstate = driver_exc.sqlstate  # type: ignore[attr-defined]
    return DBAPIError.instance("SELECT 1", {}, adapted, dbapi.Error)  # type: ignore[arg-type]
