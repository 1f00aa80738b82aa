"""The payments rules that a deployment tunes, read from ``ILA_PAYMENTS_*`` variables.

The defaults are modelled on France's Mon Compte Formation (CPF): a 100 EUR participation
fee that job seekers do not pay, a withdrawal period after the learner's confirmation, a
small share of the price kept by the provider when the learner cancels late, and payment
bands that pay providers pro rata to the training actually delivered.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.events.accounts import NeedTier


class LeaveConfig(BaseSettings):
    """Paid training leave, read from ``ILA_LEAVE_*`` variables: the wage compensation an
    employer is paid per hour of leave (``ILA_LEAVE_HOURLY_RATE_CENTS``) up to a cap per
    request (``ILA_LEAVE_CAP_CENTS``), from the budget of the leave fund, a funder of the
    ledger (``ILA_LEAVE_FUND_ID``); how long the employer has to decide."""

    model_config = SettingsConfigDict(env_prefix="ILA_LEAVE_", extra="ignore", frozen=True)

    hourly_rate_cents: int = Field(default=1_500, gt=0)
    cap_cents: int = Field(default=150_000, gt=0)
    fund_id: str = Field(default="leave-fund", min_length=1, max_length=100)
    # the employer decides within this many days of the request, and before the session
    decision_days: int = Field(default=14, ge=1, le=90)
    # a day of leave is at most this many hours
    max_hours_per_day: int = Field(default=8, ge=1, le=24)


class PaymentsConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ILA_PAYMENTS_", extra="ignore", frozen=True)

    # how long a learner has to confirm (or refuse) a proposed enrolment
    confirmation_hours: float = Field(default=72.0, gt=0)
    # participation fee (minor units) the learner pays out of pocket on each enrolment
    participation_fee: int = Field(default=10_000, ge=0)
    fee_exempt_statuses: tuple[str, ...] = ("unemployed",)
    # need tiers (standard, priority, high) whose learners pay no participation fee
    fee_exempt_tiers: tuple[NeedTier, ...] = ()
    # an earmarked top-up matching the course and at least this large waives the fee
    fee_waived_by_earmarked_top_up: bool = True
    # cancellation rules
    withdrawal_days: int = Field(default=14, ge=0)
    late_cancellation_percent: int = Field(default=10, ge=0, le=100)
    # claim bands: below ``band_floor_rate``% completion → ``band_floor_share``% of the price;
    # from there to ``band_full_rate``% → pro rata; at or above → the whole price
    band_floor_rate: int = Field(default=25, ge=0, le=100)
    band_floor_share: int = Field(default=25, ge=0, le=100)
    band_full_rate: int = Field(default=80, ge=0, le=100)
    # claims are accepted from the session's start until this many days after its end
    claim_window_days: int = Field(default=90, ge=0)
    # the start milestone (an advance) exists for sessions at least this long
    start_milestone_min_days: int = Field(default=90, ge=1)
    start_advance_percent: int = Field(default=30, ge=0, le=100)
    # fraud rule: more than this many enrolments by one provider within an hour → held
    velocity_per_hour: int = Field(default=30, ge=1)
    # the learner attests attendance or contests a claim within this many days of it; a
    # claim is payable once attested or once the window passed uncontested
    attestation_days: int = Field(default=14, ge=0, le=90)
    # the reservation outlives the claim window by this margin
    reservation_margin_days: int = Field(default=30, ge=0)
    # an enrolment the ledger has not answered this long after the learner's consent expires
    # and frees its seat (ILA_PAYMENTS_RESERVING_TIMEOUT_MINUTES)
    reserving_timeout_minutes: float = Field(default=60.0, gt=0)
    # background expiry of unconfirmed enrolments
    sweep_interval_seconds: float = Field(default=30.0, gt=0)
    # the debtor of the SEPA credit transfers (the fund paying providers)
    debtor_name: str = "ILA Training Fund"
    debtor_iban: str = "FR7630006000011234567890189"
    debtor_bic: str = "AGRIFRPPXXX"
    sepa_schema: str = "pain.001.001.09"
    # changed payee bank details are paid only after this many days unless finance
    # verified them with the bank (ILA_PAYMENTS_PAYEE_COOLING_OFF_DAYS)
    payee_cooling_off_days: float = Field(default=7.0, ge=0)
    # paid training leave (ILA_LEAVE_*)
    leave: LeaveConfig = Field(default_factory=LeaveConfig)

    @model_validator(mode="after")
    def _bands_in_order(self) -> PaymentsConfig:
        if self.band_floor_rate > self.band_full_rate:
            raise ValueError("band_floor_rate must not exceed band_full_rate")
        return self

    @property
    def confirmation_window(self) -> timedelta:
        return timedelta(hours=self.confirmation_hours)

    @property
    def attestation_window(self) -> timedelta:
        return timedelta(days=self.attestation_days)

    @property
    def payee_cooling_off(self) -> timedelta:
        return timedelta(days=self.payee_cooling_off_days)
