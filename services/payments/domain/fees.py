"""What the learner pays and what the account is asked for: the participation fee (and
what waives it, the earmark rule among them), the credit requested, and the payment bands
that pay a completion pro rata to the training delivered."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from services.payments.config import PaymentsConfig
from services.payments.domain.errors import Invalid
from services.payments.domain.views import AccountView, CourseView, LotView
from shared.events.ledger import CourseRef, Earmark


def earmark_matches(earmark: dict[str, Any], course: CourseView) -> bool:
    """The ledger's earmark rule, asked of the one definition on the shared ``Earmark``."""
    return Earmark.model_validate(earmark).admits(
        CourseRef(
            course_id=course.course_id,
            isced_field=course.isced_field,
            eqf_level=course.eqf_level,
            tags=course.tags,
        )
    )


def participation_fee(
    config: PaymentsConfig,
    account: AccountView,
    course: CourseView,
    lots: Iterable[LotView],
    now: datetime,
) -> tuple[int, str | None]:
    """The fee the learner pays themselves, and why it is waived when it is."""
    if config.participation_fee == 0:
        return 0, None
    if account.employment_status in config.fee_exempt_statuses:
        return 0, f"employment_status:{account.employment_status}"
    if account.need_tier in config.fee_exempt_tiers:
        return 0, f"need_tier:{account.need_tier}"
    if config.fee_waived_by_earmarked_top_up:
        for lot in lots:
            live = not lot.revoked and (lot.expires_at is None or lot.expires_at > now)
            if (
                live
                and lot.kind == "top_up"
                and lot.earmark
                and lot.amount >= config.participation_fee
                and earmark_matches(lot.earmark, course)
            ):
                return 0, "earmarked_top_up"
    return min(config.participation_fee, course.price), None


def credit_request(price: int, fee: int) -> int:
    """What the account is asked to cover: the price less the learner's own fee."""
    amount = price - fee
    if amount <= 0:
        raise Invalid(
            "price_within_participation_fee",
            f"the price {price} does not exceed the participation fee {fee}: "
            "nothing to pay from the account",
        )
    return amount


def band_amount(config: PaymentsConfig, price: int, completion_rate: int) -> int:
    """What a completion at ``completion_rate`` percent earns, before the reservation cap."""
    if not 0 <= completion_rate <= 100:
        raise ValueError("completion_rate is a percentage")
    if completion_rate >= config.band_full_rate:
        return price
    if completion_rate < config.band_floor_rate:
        return price * config.band_floor_share // 100
    return price * completion_rate // 100
