"""Overdue accrual (罚息 / 复利), days past due, buckets and the payoff quote.

Pure and Decimal-only. Rates are fractions (0.049 = 4.9 % a year), the markup a
fraction (0.5 = +50 %), the day basis /360 (domain.md, "Overdue, penalty, fees").
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, timedelta
from decimal import Decimal, localcontext

from servicing.domain.money import fen, format_amount

DAY_BASIS = 360
# Enough digits that every product below is exact and the single division by 360 is
# far from any half-fen boundary: the result no longer depends on the order of the
# factors and matches SQL's ROUND(p * rate * (1 + markup) * days / 360, 2).
_PRECISION = 100


class AccrualError(ValueError):
    """An accrual input that makes no sense (negative amount, rate, markup or days)."""


def _non_negative(value: Decimal, what: str) -> Decimal:
    if isinstance(value, float):
        raise AccrualError(f"{what} must be a Decimal, not a float")
    value = Decimal(value)
    if not value.is_finite() or value < 0:
        raise AccrualError(f"{what} must be a finite amount >= 0, got {value}")
    return value


def penalty_rate(annual_rate: Decimal, markup: Decimal) -> Decimal:
    """Annual penalty rate = contract rate x (1 + markup), left unrounded for later maths."""
    annual_rate = _non_negative(annual_rate, "annual rate")
    markup = _non_negative(markup, "markup")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return annual_rate * (1 + markup)


def _overdue_interest(base: Decimal, annual_rate: Decimal, markup: Decimal, days: int, what: str) -> Decimal:
    """base x rate x (1 + markup) x days / 360, rounded once to the fen, half up."""
    base = _non_negative(base, what)
    annual_rate = _non_negative(annual_rate, "annual rate")
    markup = _non_negative(markup, "markup")
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise AccrualError(f"days must be an integer >= 0, got {days!r}")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return fen(base * annual_rate * (1 + markup) * days / DAY_BASIS)


def penalty_interest(overdue_principal: Decimal, annual_rate: Decimal, markup: Decimal, days: int) -> Decimal:
    """Penalty interest 罚息 on overdue principal for ``days`` days."""
    return _overdue_interest(overdue_principal, annual_rate, markup, days, "overdue principal")


def compound_interest(overdue_interest: Decimal, annual_rate: Decimal, markup: Decimal, days: int) -> Decimal:
    """Compound interest 复利 on overdue interest: same formula as the penalty (penalty rate)."""
    return _overdue_interest(overdue_interest, annual_rate, markup, days, "overdue interest")


def accrual_days(
    due_date: date,
    grace_days: int,
    accrued_through: date | None,
    business_date: date,
) -> tuple[date | None, int]:
    """Days to accrue on ``business_date`` and the new accrued-through date.

    Nothing accrues while business_date <= due_date + grace_days (a borrower who pays
    within grace owes no penalty). The first run past grace catches up from the day
    after the due date; later runs continue from ``accrued_through``. Running the same
    business date twice, or an earlier one, accrues 0 and never moves the date back.
    """
    if isinstance(grace_days, bool) or not isinstance(grace_days, int) or grace_days < 0:
        raise AccrualError(f"grace days must be an integer >= 0, got {grace_days!r}")
    if business_date <= due_date + timedelta(days=grace_days):
        return accrued_through, 0
    last = due_date if accrued_through is None else max(accrued_through, due_date)
    days = (business_date - last).days  # from last + 1 day through business_date inclusive
    if days <= 0:
        return accrued_through, 0
    return business_date, days


def days_past_due(oldest_unpaid_due_date: date | None, business_date: date) -> int:
    """DPD counts from the day after the due date; 0 when nothing is unpaid or not yet due."""
    if oldest_unpaid_due_date is None:
        return 0
    return max(0, (business_date - oldest_unpaid_due_date).days)


def bucket(dpd: int) -> str:
    """Delinquency bucket: M0 current, M1 1-30, M2 31-60, M3 61-90, M3+ beyond 90 days."""
    if dpd < 0:
        raise AccrualError(f"days past due cannot be negative, got {dpd}")
    if dpd == 0:
        return "M0"
    if dpd <= 30:
        return "M1"
    if dpd <= 60:
        return "M2"
    if dpd <= 90:
        return "M3"
    return "M3+"


@dataclass(frozen=True)
class PayoffQuote:
    """What it takes to settle the loan as of a date, every part already to the fen."""

    principal: Decimal
    interest: Decimal
    penalty: Decimal
    compound: Decimal
    fees: Decimal
    prepayment_fee: Decimal
    total: Decimal

    def as_json(self) -> dict[str, str]:
        """Strings with exactly two decimals, so no float ever carries the amounts."""
        return {f.name: format_amount(fen(getattr(self, f.name))) for f in fields(self)}


def payoff_quote(
    *,
    remaining_principal: Decimal,
    interest_due_unpaid: Decimal,
    interest_accrued_current_period: Decimal,
    penalty: Decimal,
    compound: Decimal,
    fees: Decimal,
    prepayment_fee_rate: Decimal = Decimal(0),
    prepayment_fee_base: Decimal | None = None,
) -> PayoffQuote:
    """Payoff = principal + interest (due unpaid + accrued this period) + penalty + compound
    + fees + prepayment fee (rate x base, the base defaulting to the remaining principal).

    Each part is rounded to the fen and the total is the sum of the rounded parts, so
    the quote always adds up on screen and in the certificate.
    """
    principal = fen(_non_negative(remaining_principal, "remaining principal"))
    interest = fen(
        _non_negative(interest_due_unpaid, "interest due unpaid")
        + _non_negative(interest_accrued_current_period, "interest accrued this period")
    )
    penalty_ = fen(_non_negative(penalty, "penalty"))
    compound_ = fen(_non_negative(compound, "compound interest"))
    fees_ = fen(_non_negative(fees, "fees"))
    rate = _non_negative(prepayment_fee_rate, "prepayment fee rate")
    base = (
        principal
        if prepayment_fee_base is None
        else _non_negative(prepayment_fee_base, "prepayment fee base")
    )
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        prepayment_fee = fen(rate * base)
    total = principal + interest + penalty_ + compound_ + fees_ + prepayment_fee
    return PayoffQuote(
        principal=principal,
        interest=interest,
        penalty=penalty_,
        compound=compound_,
        fees=fees_,
        prepayment_fee=prepayment_fee,
        total=fen(total),
    )
