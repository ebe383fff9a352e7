"""Penalty / compound accrual, DPD buckets and the payoff quote (no DB, no Django)."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicing.domain.accrual import (
    AccrualError,
    PayoffQuote,
    accrual_days,
    bucket,
    compound_interest,
    days_past_due,
    payoff_quote,
    penalty_interest,
    penalty_rate,
)
from servicing.domain.money import MoneyError

D = Decimal


def exact_half_up_fen(value: Fraction) -> Decimal:
    """Test oracle: exact rational rounding to the fen, half away from zero (PostgreSQL ROUND)."""
    scaled = abs(value) * 100
    n = math.floor(scaled + Fraction(1, 2))
    return (D(n if value >= 0 else -n) / 100).quantize(D("0.01"))


# ---------------------------------------------------------------------------------------
# Penalty and compound interest
# ---------------------------------------------------------------------------------------


def test_reference_penalty_one_day() -> None:
    # 100,000 x 6 % x 1.5 / 360 = 25.00
    assert penalty_interest(D("100000.00"), D("0.06"), D("0.5"), 1) == D("25.00")


@pytest.mark.parametrize(
    ("principal", "rate", "markup", "days", "expected"),
    [
        (D("100000.00"), D("0.06"), D("0.5"), 4, "100.00"),
        (D("100000.00"), D("0.06"), D("0.3"), 31, "671.67"),  # 100000*.078*31/360 = 671.666..
        (D("8106.64"), D("0.06"), D("0.5"), 1, "2.03"),  # 2.02666
        (D("1.00"), D("0.049"), D("0.5"), 1, "0.00"),  # 0.000204
        (D("12.00"), D("0.1"), D("0.5"), 1, "0.01"),  # 0.005 exactly: half up
        (D("36.00"), D("0.1"), D("0"), 5, "0.05"),  # 0.05 exactly
        # exactly 3489.935: a daily rate taken first (0.15/360 at 28 digits) gives 3489.93499.. -> .93
        (D("34899.35"), D("0.1"), D("0.5"), 240, "3489.94"),
        (D("100000.00"), D("0.06"), D("0.5"), 0, "0.00"),
        (D("0"), D("0.06"), D("0.5"), 10, "0.00"),
    ],
)
def test_penalty_table(principal: Decimal, rate: Decimal, markup: Decimal, days: int, expected: str) -> None:
    result = penalty_interest(principal, rate, markup, days)
    assert str(result) == expected


def test_penalty_rate_unrounded() -> None:
    assert penalty_rate(D("0.049"), D("0.5")) == D("0.0735")
    assert penalty_rate(D("0.0435"), D("0.3")) == D("0.05655")


def test_compound_is_the_same_formula_on_overdue_interest() -> None:
    assert compound_interest(D("500.00"), D("0.06"), D("0.5"), 30) == D("3.75")
    args = (D("500.00"), D("0.06"), D("0.5"), 7)
    assert compound_interest(*args) == penalty_interest(*args)


@pytest.mark.parametrize(
    "args",
    [
        (D("-1.00"), D("0.06"), D("0.5"), 1),
        (D("1.00"), D("-0.06"), D("0.5"), 1),
        (D("1.00"), D("0.06"), D("-0.5"), 1),
        (D("1.00"), D("0.06"), D("0.5"), -1),
        (D("1.00"), D("0.06"), D("0.5"), 1.0),
        (1.0, D("0.06"), D("0.5"), 1),
        (D("NaN"), D("0.06"), D("0.5"), 1),
    ],
)
def test_bad_penalty_inputs(args: tuple) -> None:
    with pytest.raises(AccrualError):
        penalty_interest(*args)


amounts = st.integers(min_value=0, max_value=10**10).map(lambda n: D(n).scaleb(-2))
rates = st.integers(min_value=0, max_value=240_000).map(lambda n: D(n).scaleb(-6))  # 0 .. 24 %, 6 decimals
markups = st.integers(min_value=0, max_value=100).map(lambda n: D(n).scaleb(-2))  # 0 .. +100 %


@given(amounts, rates, markups, st.integers(min_value=0, max_value=3650))
def test_penalty_is_exactly_rounded_once(p: Decimal, rate: Decimal, markup: Decimal, days: int) -> None:
    """Same as exact rational maths rounded once half up, i.e. what SQL's ROUND(..., 2) gives;
    so the order of the factors cannot matter."""
    expected = exact_half_up_fen(Fraction(p) * Fraction(rate) * (1 + Fraction(markup)) * days / 360)
    result = penalty_interest(p, rate, markup, days)
    assert result == expected
    assert result.as_tuple().exponent == -2
    assert compound_interest(p, rate, markup, days) == expected


# ---------------------------------------------------------------------------------------
# Accrual days and grace
# ---------------------------------------------------------------------------------------

DUE = date(2026, 3, 10)


def test_grace_day_walkthrough() -> None:
    """due 03-10, grace 3: nothing through 03-13; 03-14 catches up 4 days; rerun 0; 03-15 one."""
    through: date | None = None
    for day in (11, 12, 13):
        through, days = accrual_days(DUE, 3, through, date(2026, 3, day))
        assert (through, days) == (None, 0)

    through, days = accrual_days(DUE, 3, through, date(2026, 3, 14))
    assert (through, days) == (date(2026, 3, 14), 4)

    assert accrual_days(DUE, 3, through, date(2026, 3, 14)) == (date(2026, 3, 14), 0)

    through, days = accrual_days(DUE, 3, through, date(2026, 3, 15))
    assert (through, days) == (date(2026, 3, 15), 1)


@pytest.mark.parametrize(
    ("grace", "through", "business", "expected"),
    [
        (0, None, date(2026, 3, 10), (None, 0)),  # the due date itself is not overdue
        (0, None, date(2026, 3, 11), (date(2026, 3, 11), 1)),
        (0, None, date(2026, 3, 20), (date(2026, 3, 20), 10)),  # batch missed days: catch up
        # an earlier business date accrues nothing and does not move accrued_through back
        (3, date(2026, 3, 15), date(2026, 3, 14), (date(2026, 3, 15), 0)),
        (3, date(2026, 3, 15), date(2026, 3, 18), (date(2026, 3, 18), 3)),
        (3, None, date(2026, 3, 1), (None, 0)),  # before the due date
        (3, date(2026, 3, 1), date(2026, 3, 14), (date(2026, 3, 14), 4)),  # stale through < due: from due+1
    ],
)
def test_accrual_days_table(
    grace: int, through: date | None, business: date, expected: tuple[date | None, int]
) -> None:
    assert accrual_days(DUE, grace, through, business) == expected


def test_negative_grace_refused() -> None:
    with pytest.raises(AccrualError):
        accrual_days(DUE, -1, None, DUE)


dates = st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31))


@given(dates, st.integers(min_value=0, max_value=15), st.one_of(st.none(), dates), dates)
def test_accrual_days_never_negative_and_idempotent(
    due: date, grace: int, through: date | None, business: date
) -> None:
    new_through, days = accrual_days(due, grace, through, business)
    assert days >= 0
    if days:
        assert new_through == business
        assert through is None or new_through > through  # never moves back
        assert days <= (business - due).days
    else:
        assert new_through == through
    # Running the same business date again changes nothing.
    assert accrual_days(due, grace, new_through, business) == (new_through, 0)


@given(
    amounts,
    rates,
    markups,
    st.integers(min_value=0, max_value=10),  # grace days
    st.integers(min_value=1, max_value=120),  # business days run after the due date
)
def test_day_by_day_equals_catch_up_within_rounding(
    principal: Decimal, rate: Decimal, markup: Decimal, grace: int, horizon: int
) -> None:
    """Property: with the overdue principal unchanged, running the batch every day from the day
    after the due date to day N, or once on day N, accrues the same number of days, and the
    penalty totals differ only by per-run rounding: |sum of daily runs - one run| <= 0.005 x
    (number of runs that accrued), hence <= 0.005 x days. (Each run rounds once, error within
    half a fen; both sides are whole fen, so the gap never exceeds the runs' half fens.)"""
    final = DUE + timedelta(days=horizon)

    through: date | None = None
    daily_days = 0
    daily_total = D("0.00")
    runs = 0
    day = DUE + timedelta(days=1)
    while day <= final:
        through, days = accrual_days(DUE, grace, through, day)
        assert days >= 0
        # rerunning the same day is a no-op
        assert accrual_days(DUE, grace, through, day) == (through, 0)
        if days:
            runs += 1
            daily_days += days
            daily_total += penalty_interest(principal, rate, markup, days)
        day += timedelta(days=1)

    once_through, once_days = accrual_days(DUE, grace, None, final)
    once_total = penalty_interest(principal, rate, markup, once_days)

    assert (through, daily_days) == (once_through, once_days)
    assert once_days == (horizon if horizon > grace else 0)
    gap = abs(daily_total - once_total)
    assert gap <= D("0.005") * runs
    assert gap <= D("0.005") * once_days


# ---------------------------------------------------------------------------------------
# DPD and buckets
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("oldest", "business", "dpd"),
    [
        (None, date(2026, 3, 10), 0),
        (date(2026, 3, 10), date(2026, 3, 1), 0),
        (date(2026, 3, 10), date(2026, 3, 10), 0),
        (date(2026, 3, 10), date(2026, 3, 11), 1),
        (date(2026, 1, 31), date(2026, 3, 2), 30),
    ],
)
def test_days_past_due(oldest: date | None, business: date, dpd: int) -> None:
    assert days_past_due(oldest, business) == dpd


@pytest.mark.parametrize(
    ("dpd", "name"),
    [
        (0, "M0"),
        (1, "M1"),
        (30, "M1"),
        (31, "M2"),
        (60, "M2"),
        (61, "M3"),
        (90, "M3"),
        (91, "M3+"),
        (400, "M3+"),
    ],
)
def test_bucket(dpd: int, name: str) -> None:
    assert bucket(dpd) == name


def test_bucket_negative_refused() -> None:
    with pytest.raises(AccrualError):
        bucket(-1)


# ---------------------------------------------------------------------------------------
# Payoff quote
# ---------------------------------------------------------------------------------------

BASE = {
    "remaining_principal": D("50000.00"),
    "interest_due_unpaid": D("250.00"),
    "interest_accrued_current_period": D("83.33"),
    "penalty": D("12.50"),
    "compound": D("0.94"),
    "fees": D("5.00"),
}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {},
            {
                "principal": "50000.00",
                "interest": "333.33",
                "penalty": "12.50",
                "compound": "0.94",
                "fees": "5.00",
                "prepayment_fee": "0.00",
                "total": "50351.77",
            },
        ),
        (
            {"prepayment_fee_rate": D("0.02")},  # 2 % of remaining principal
            {
                "principal": "50000.00",
                "interest": "333.33",
                "penalty": "12.50",
                "compound": "0.94",
                "fees": "5.00",
                "prepayment_fee": "1000.00",
                "total": "51351.77",
            },
        ),
        (
            {"prepayment_fee_rate": D("0.015"), "prepayment_fee_base": D("12345.67")},  # 185.18505
            {
                "principal": "50000.00",
                "interest": "333.33",
                "penalty": "12.50",
                "compound": "0.94",
                "fees": "5.00",
                "prepayment_fee": "185.19",
                "total": "50536.96",
            },
        ),
        (
            {"prepayment_fee_rate": D("0.03"), "prepayment_fee_base": D("0")},  # explicit 0 base: no fee
            {
                "principal": "50000.00",
                "interest": "333.33",
                "penalty": "12.50",
                "compound": "0.94",
                "fees": "5.00",
                "prepayment_fee": "0.00",
                "total": "50351.77",
            },
        ),
    ],
)
def test_payoff_quote_table(extra: dict, expected: dict[str, str]) -> None:
    quote = payoff_quote(**BASE, **extra)
    assert quote.as_json() == expected
    assert isinstance(quote, PayoffQuote)
    assert quote.total == sum(
        (quote.principal, quote.interest, quote.penalty, quote.compound, quote.fees, quote.prepayment_fee)
    )


def test_payoff_quote_all_zero_and_rounding() -> None:
    quote = payoff_quote(
        remaining_principal=D("0"),
        interest_due_unpaid=D("0"),
        interest_accrued_current_period=D("0.005"),  # unrounded accrual rounds half up once
        penalty=D("0"),
        compound=D("0"),
        fees=D("0"),
    )
    assert quote.interest == D("0.01")
    assert quote.as_json()["principal"] == "0.00"
    assert quote.as_json()["total"] == "0.01"


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("penalty", D("-1.00"), AccrualError),
        ("fees", 1.5, AccrualError),
        ("prepayment_fee_rate", D("-0.01"), AccrualError),
    ],
)
def test_payoff_quote_bad_input(field: str, value: object, error: type[Exception]) -> None:
    with pytest.raises((error, MoneyError)):
        payoff_quote(**{**BASE, field: value})


@given(amounts, amounts, amounts, amounts, amounts, amounts, rates)
def test_payoff_total_adds_up(p, due_i, acc_i, pen, comp, fees, rate) -> None:  # type: ignore[no-untyped-def]
    quote = payoff_quote(
        remaining_principal=p,
        interest_due_unpaid=due_i,
        interest_accrued_current_period=acc_i,
        penalty=pen,
        compound=comp,
        fees=fees,
        prepayment_fee_rate=rate,
    )
    parts = [quote.principal, quote.interest, quote.penalty, quote.compound, quote.fees, quote.prepayment_fee]
    assert quote.total == sum(parts)
    assert quote.interest == due_i + acc_i
    assert all(v.as_tuple().exponent == -2 for v in [*parts, quote.total])
    assert all(D(s) == getattr(quote, k) and s == f"{D(s):.2f}" for k, s in quote.as_json().items())
