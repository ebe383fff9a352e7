"""Pure schedule arithmetic: reference values from domain.md, calendar rules, and invariants.

No database and no Django: run with ``pytest tests/test_schedule.py -p no:django``.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servicing.domain.money import fen
from servicing.domain.schedule import (
    HolidayRule,
    Method,
    ScheduleError,
    ScheduleLine,
    accrued_interest,
    add_months,
    adjust_for_holiday,
    annuity_instalment,
    build_schedule,
    due_dates,
    periods_to_repay,
    schedule_for_dates,
    schedule_totals,
)

D = Decimal
REGULAR_START = date(2026, 1, 15)  # repayment day = start day, so every period is a regular month


# --------------------------------------------------------------------------- reference values


REFERENCE = [
    # method, principal, rate, months,
    # first total, first interest, first principal, last total, total interest
    (
        Method.EQUAL_INSTALMENT,
        "670000",
        "0.049",
        360,
        "3555.87",
        "2735.83",
        "820.04",
        "3555.18",
        "610112.51",
    ),
    (Method.EQUAL_INSTALMENT, "100000", "0.06", 12, "8606.64", "500.00", "8106.64", "8606.69", "3279.73"),
    (Method.EQUAL_PRINCIPAL, "100000", "0.06", 12, "8833.33", "500.00", "8333.33", "8375.04", "3250.00"),
]


@pytest.mark.parametrize(
    "method,principal,rate,months,first_total,first_interest,first_principal,last_total,total_interest",
    REFERENCE,
)
def test_public_reference_values(
    method, principal, rate, months, first_total, first_interest, first_principal, last_total, total_interest
):
    lines = build_schedule(method, D(principal), D(rate), months, REGULAR_START)
    assert len(lines) == months
    assert lines[0].total == D(first_total)
    assert lines[0].interest == D(first_interest)
    assert lines[0].principal == D(first_principal)
    assert lines[-1].total == D(last_total)
    totals = schedule_totals(lines)
    assert totals["interest"] == D(total_interest)
    assert totals["principal"] == D(principal)
    assert lines[-1].balance_after == D("0.00")


@pytest.mark.parametrize(
    "principal,rate,months,instalment",
    [("670000", "0.049", 360, "3555.87"), ("100000", "0.06", 12, "8606.64")],
)
def test_reference_instalment_is_constant_until_the_last_period(principal, rate, months, instalment):
    assert annuity_instalment(D(principal), D(rate), months) == D(instalment)
    lines = build_schedule(Method.EQUAL_INSTALMENT, D(principal), D(rate), months, REGULAR_START)
    assert {line.total for line in lines[:-1]} == {D(instalment)}


def test_reference_daily_interest_31_days():
    assert accrued_interest(D("100000"), D("0.06"), date(2026, 1, 1), date(2026, 2, 1)) == D("516.67")


def test_accrued_interest_counts_start_day_not_end_day():
    assert accrued_interest(D("36000"), D("0.10"), date(2026, 3, 1), date(2026, 3, 1)) == D("0.00")
    assert accrued_interest(D("36000"), D("0.10"), date(2026, 3, 1), date(2026, 3, 2)) == D("10.00")


def test_accrued_interest_rounds_half_up_once():
    # 900 x 0.01 x 1 / 360 = 0.025 exactly: half up gives 0.03 (half even would give 0.02)
    assert accrued_interest(D("900"), D("0.01"), date(2026, 1, 1), date(2026, 1, 2)) == D("0.03")


def test_monthly_interest_exact_half_fen_rounds_up():
    # 30.00 x 0.01 / 12 = 0.025 exactly -> 0.03 (half up, not half even 0.02)
    lines = schedule_for_dates(
        Method.INTEREST_ONLY, D("30.00"), D("0.01"), date(2026, 1, 15), [date(2026, 2, 15)]
    )
    assert lines[0].interest == D("0.03")


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    "start,months,day,expected",
    [
        (date(2026, 1, 31), 1, None, date(2026, 2, 28)),
        (date(2026, 1, 31), 2, None, date(2026, 3, 31)),
        (date(2024, 1, 31), 1, None, date(2024, 2, 29)),  # leap year
        (date(2024, 2, 29), 12, None, date(2025, 2, 28)),
        (date(2026, 2, 28), 1, 31, date(2026, 3, 31)),  # day comes from the repayment day, not from d
        (date(2026, 11, 30), 3, None, date(2027, 2, 28)),
        (date(2026, 3, 31), -1, None, date(2026, 2, 28)),
        (date(2026, 12, 15), 1, None, date(2027, 1, 15)),
    ],
)
def test_add_months_clamps_to_month_end(start, months, day, expected):
    assert add_months(start, months, day) == expected


def test_due_dates_month_end_does_not_drift():
    assert due_dates(date(2026, 1, 31), 6) == [
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
        date(2026, 5, 31),
        date(2026, 6, 30),
        date(2026, 7, 31),
    ]


def test_due_dates_through_a_leap_february():
    assert due_dates(date(2027, 12, 30), 4) == [
        date(2028, 1, 30),
        date(2028, 2, 29),
        date(2028, 3, 30),
        date(2028, 4, 30),
    ]


def test_due_dates_with_repayment_day_other_than_start_day():
    assert due_dates(date(2026, 1, 5), 3, repayment_day=20) == [
        date(2026, 2, 20),
        date(2026, 3, 20),
        date(2026, 4, 20),
    ]


def test_month_end_start_is_a_regular_first_period():
    # Jan 31 -> Feb 28 is one month (28 days); it is charged r, not 28 days / 360.
    lines = build_schedule(Method.EQUAL_PRINCIPAL, D("100000"), D("0.06"), 12, date(2026, 1, 31))
    assert lines[0].due_date == date(2026, 2, 28)
    assert lines[0].days == 28
    assert lines[0].interest == D("500.00")


def test_first_period_irregular_is_charged_by_days():
    # Value date Jan 15, repayment day 20: first period Jan 15 -> Feb 20 = 36 days.
    lines = build_schedule(
        Method.EQUAL_INSTALMENT, D("100000"), D("0.06"), 12, date(2026, 1, 15), repayment_day=20
    )
    first, second = lines[0], lines[1]
    assert (first.period_start, first.due_date, first.days) == (date(2026, 1, 15), date(2026, 2, 20), 36)
    assert first.interest == D("600.00")  # 100,000 x 0.06 / 360 x 36
    assert first.principal == D("8606.64") - D("600.00")
    # later periods are regular months at r, whatever their day count (Feb 20 -> Mar 20 is 28 days)
    assert second.days == 28
    assert second.interest == fen(first.balance_after * D("0.005"))
    assert schedule_totals(lines)["principal"] == D("100000.00")


def test_short_first_period_is_charged_by_days():
    lines = build_schedule(
        Method.INTEREST_ONLY, D("100000"), D("0.06"), 3, date(2026, 1, 25), repayment_day=5
    )
    assert lines[0].days == 11  # Jan 25 -> Feb 5
    assert lines[0].interest == D("183.33")
    assert [line.interest for line in lines[1:]] == [D("500.00"), D("500.00")]
    assert [line.principal for line in lines] == [D("0.00"), D("0.00"), D("100000.00")]


@pytest.mark.parametrize(
    "period_start,first_due,regular",
    [
        (date(2026, 1, 31), date(2026, 2, 28), True),  # the 31st clamped into February
        (date(2026, 2, 28), date(2026, 3, 31), True),  # re-schedule from the clamped 31st
        (date(2026, 2, 28), date(2026, 3, 28), True),
        (date(2028, 2, 29), date(2028, 3, 31), True),
        (date(2026, 2, 20), date(2026, 3, 31), False),
        (date(2026, 2, 27), date(2026, 3, 31), False),
        (date(2026, 1, 15), date(2026, 2, 16), False),
    ],
)
def test_first_period_regularity_at_month_ends(period_start, first_due, regular):
    lines = schedule_for_dates(Method.INTEREST_ONLY, D("100000"), D("0.06"), period_start, [first_due])
    by_days = accrued_interest(D("100000"), D("0.06"), period_start, first_due)
    assert lines[0].interest == (D("500.00") if regular else by_days)


def test_reschedule_mid_period_with_first_seq():
    dates = [date(2026, 4, 15), date(2026, 5, 15), date(2026, 6, 15)]
    lines = schedule_for_dates(
        Method.EQUAL_PRINCIPAL, D("30000"), D("0.06"), date(2026, 3, 20), dates, first_seq=4
    )
    assert [line.seq for line in lines] == [4, 5, 6]
    assert lines[0].days == 26
    assert lines[0].interest == D("130.00")  # 30,000 x 0.06 / 360 x 26
    assert lines[1].interest == D("100.00")  # 20,000 x 0.005


def test_bullet_is_one_line_by_days():
    lines = build_schedule(Method.BULLET, D("100000"), D("0.06"), 3, date(2026, 1, 31))
    assert len(lines) == 1
    (line,) = lines
    assert line.due_date == date(2026, 4, 30)
    assert line.days == 89
    assert line.interest == D("1483.33")  # 100,000 x 0.06 x 89 / 360
    assert line.total == D("101483.33")
    assert line.balance_after == D("0.00")


def test_flat_fee_charges_fee_not_interest():
    lines = build_schedule(Method.FLAT_FEE, D("1000"), D("0.12"), 3, REGULAR_START, fee_rate=D("0.006"))
    assert [line.principal for line in lines] == [D("333.33"), D("333.33"), D("333.34")]
    assert {line.fee for line in lines} == {D("6.00")}
    assert {line.interest for line in lines} == {D("0.00")}
    assert [line.total for line in lines] == [D("339.33"), D("339.33"), D("339.34")]


def test_long_first_period_never_makes_principal_negative():
    # 13 months to the first due date at 24 %: interest on the first period exceeds the instalment.
    period_start = date(2026, 1, 1)
    dates = [add_months(date(2027, 1, 1), i) for i in range(12)]
    lines = schedule_for_dates(Method.EQUAL_INSTALMENT, D("10000"), D("0.24"), period_start, dates)
    assert lines[0].interest > annuity_instalment(D("10000"), D("0.24"), 12)
    assert lines[0].principal == D("0.00")
    assert lines[0].balance_after == D("10000.00")
    assert schedule_totals(lines)["principal"] == D("10000.00")
    assert lines[-1].balance_after == D("0.00")


def test_tiny_loan_over_many_periods_stops_at_zero():
    # 100 / 360 rounds UP to 0.28; 359 x 0.28 would overshoot the loan, so principal stops at the balance.
    lines = build_schedule(Method.EQUAL_PRINCIPAL, D("100.00"), D("0"), 360, REGULAR_START)
    assert lines[0].principal == D("0.28")
    assert schedule_totals(lines)["principal"] == D("100.00")
    assert min(line.balance_after for line in lines) == D("0.00")
    assert lines[-1].principal == D("0.00")


def test_zero_rate_equal_instalment():
    lines = build_schedule(Method.EQUAL_INSTALMENT, D("1000"), D("0"), 3, REGULAR_START)
    assert [line.total for line in lines] == [D("333.33"), D("333.33"), D("333.34")]
    assert schedule_totals(lines)["interest"] == D("0.00")


# --------------------------------------------------------------------------- holidays

# A small 2026 calendar: Spring Festival Feb 15-23 off, Saturdays Feb 14 and Feb 28 are make-up working days.
HOLIDAYS = {date(2026, 2, 15) + timedelta(days=i) for i in range(9)}
MAKE_UP_DAYS = {date(2026, 2, 14), date(2026, 2, 28)}


def fake_is_working_day(d: date) -> bool:
    if d in MAKE_UP_DAYS:
        return True
    return d.weekday() < 5 and d not in HOLIDAYS


@pytest.mark.parametrize(
    "due,rule,expected",
    [
        (date(2026, 2, 20), HolidayRule.NONE, date(2026, 2, 20)),
        (date(2026, 2, 15), HolidayRule.FOLLOWING, date(2026, 2, 24)),  # through the whole festival
        (date(2026, 2, 20), HolidayRule.PRECEDING, date(2026, 2, 14)),  # lands on the make-up Saturday
        (date(2026, 2, 28), HolidayRule.FOLLOWING, date(2026, 2, 28)),  # a working Saturday stays
        (date(2026, 3, 31), HolidayRule.FOLLOWING, date(2026, 3, 31)),  # a working day stays
        (date(2026, 1, 31), HolidayRule.FOLLOWING, date(2026, 2, 2)),  # Sat -> Mon, next month
        (date(2026, 1, 31), HolidayRule.MODIFIED_FOLLOWING, date(2026, 1, 30)),  # stays in January
        (date(2026, 2, 20), HolidayRule.MODIFIED_FOLLOWING, date(2026, 2, 24)),  # same month: plain following
        (date(2026, 5, 31), HolidayRule.MODIFIED_FOLLOWING, date(2026, 5, 29)),
    ],
)
def test_adjust_for_holiday(due, rule, expected):
    assert adjust_for_holiday(due, rule, fake_is_working_day) == expected


def test_rule_none_never_consults_the_calendar():
    def boom(_: date) -> bool:
        raise AssertionError("calendar consulted")

    assert adjust_for_holiday(date(2026, 2, 15), HolidayRule.NONE, boom) == date(2026, 2, 15)


def test_holiday_calendar_that_never_works_is_an_error():
    with pytest.raises(ScheduleError, match="is_working_day"):
        adjust_for_holiday(date(2026, 1, 1), HolidayRule.FOLLOWING, lambda d: False)


def test_holiday_rule_moves_due_date_but_not_amounts():
    args = (Method.EQUAL_INSTALMENT, D("50000"), D("0.049"), 6, date(2025, 12, 31))
    nominal = build_schedule(*args)
    moved = build_schedule(
        *args, holiday_rule=HolidayRule.MODIFIED_FOLLOWING, is_working_day=fake_is_working_day
    )
    assert [line.due_date for line in nominal][:3] == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
    ]
    assert [line.due_date for line in moved][:3] == [date(2026, 1, 30), date(2026, 2, 28), date(2026, 3, 31)]
    assert [line.due_date for line in moved][4] == date(2026, 5, 29)
    for a, b in zip(nominal, moved, strict=True):
        assert (a.principal, a.interest, a.total, a.period_start, a.days) == (
            b.principal,
            b.interest,
            b.total,
            b.period_start,
            b.days,
        )


def test_holiday_rule_needs_a_calendar():
    with pytest.raises(ScheduleError, match="is_working_day"):
        build_schedule(
            Method.BULLET, D("1000"), D("0.05"), 1, REGULAR_START, holiday_rule=HolidayRule.FOLLOWING
        )


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs,argument",
    [
        ({"principal": D("0")}, "principal"),
        ({"principal": D("-5")}, "principal"),
        ({"principal": D("100.005")}, "principal"),
        ({"principal": 1000.0}, "principal"),
        ({"principal": "abc"}, "principal"),
        ({"principal": D("1E16")}, "principal"),
        ({"months": 0}, "months"),
        ({"annual_rate": D("-0.01")}, "annual_rate"),
        ({"annual_rate": D("4.9")}, "annual_rate"),  # a percentage, not a fraction
        ({"annual_rate": 0.049}, "annual_rate"),
        ({"repayment_day": 0}, "repayment_day"),
        ({"repayment_day": 32}, "repayment_day"),
        ({"fee_rate": D("0.006")}, "fee_rate"),  # only flat_fee charges a fee
    ],
)
def test_bad_inputs_name_the_argument(kwargs, argument):
    base = {
        "method": Method.EQUAL_INSTALMENT,
        "principal": D("1000"),
        "annual_rate": D("0.05"),
        "months": 12,
        "start": REGULAR_START,
    }
    with pytest.raises(ScheduleError, match=argument):
        build_schedule(**(base | kwargs))


@pytest.mark.parametrize(
    "method,dates,argument",
    [
        (Method.EQUAL_INSTALMENT, [], "dates"),
        (Method.EQUAL_INSTALMENT, [date(2026, 3, 15), date(2026, 2, 15)], "dates"),
        (Method.EQUAL_INSTALMENT, [date(2026, 1, 15)], "dates"),  # not after period_start
        (Method.BULLET, [date(2026, 2, 15), date(2026, 3, 15)], "dates"),
    ],
)
def test_bad_dates(method, dates, argument):
    with pytest.raises(ScheduleError, match=argument):
        schedule_for_dates(method, D("1000"), D("0.05"), REGULAR_START, dates)


def test_schedule_error_is_a_value_error():
    assert issubclass(ScheduleError, ValueError)


# --------------------------------------------------------------------------- periods_to_repay


@pytest.mark.parametrize(
    "principal,rate,months",
    [("670000", "0.049", 360), ("100000", "0.06", 12), ("250000", "0.035", 120), ("8000", "0.12", 6)],
)
def test_periods_to_repay_round_trip_reference(principal, rate, months):
    instalment = annuity_instalment(D(principal), D(rate), months)
    assert periods_to_repay(Method.EQUAL_INSTALMENT, D(principal), D(rate), instalment) == months
    per_period = build_schedule(Method.EQUAL_PRINCIPAL, D(principal), D(rate), months, REGULAR_START)[
        0
    ].principal
    assert periods_to_repay(Method.EQUAL_PRINCIPAL, D(principal), D(rate), per_period) == months


def test_periods_to_repay_after_a_prepayment_shortens_the_term():
    # 100,000 at 6 %, 12 months: after 3 instalments the borrower prepays 40,000 and keeps 8,606.64.
    lines = build_schedule(Method.EQUAL_INSTALMENT, D("100000"), D("0.06"), 12, REGULAR_START)
    balance = lines[2].balance_after - D("40000")
    n = periods_to_repay(Method.EQUAL_INSTALMENT, balance, D("0.06"), D("8606.64"))
    assert (
        annuity_instalment(balance, D("0.06"), n)
        <= D("8606.64")
        < annuity_instalment(balance, D("0.06"), n - 1)
    )
    assert n == 5


def test_periods_to_repay_equal_principal_rounded_down_instalment():
    # 100,000 / 12 = 8,333.33 (last period 8,333.37): keeping it is still 12 periods, not ceil(...) = 13.
    assert periods_to_repay(Method.EQUAL_PRINCIPAL, D("100000"), D("0.06"), D("8333.33")) == 12
    assert periods_to_repay(Method.FLAT_FEE, D("50000"), D("0"), D("10000")) == 5
    # 50,000.02 / 5 rounds to 10,000.00 (the last period takes 10,000.02); 50,000.03 / 5 rounds to 10,000.01.
    assert periods_to_repay(Method.FLAT_FEE, D("50000.02"), D("0"), D("10000")) == 5
    assert periods_to_repay(Method.FLAT_FEE, D("50000.03"), D("0"), D("10000")) == 6
    assert periods_to_repay(Method.EQUAL_PRINCIPAL, D("500"), D("0.06"), D("8333.33")) == 1


def test_periods_to_repay_errors():
    with pytest.raises(ScheduleError, match="instalment"):
        periods_to_repay(Method.EQUAL_INSTALMENT, D("100000"), D("0.06"), D("500.00"))  # only covers interest
    with pytest.raises(ScheduleError, match="interest_only"):
        periods_to_repay(Method.INTEREST_ONLY, D("100000"), D("0.06"), D("500.00"))
    with pytest.raises(ScheduleError, match="instalment"):
        periods_to_repay(Method.EQUAL_INSTALMENT, D("100000"), D("0.06"), D("0"))


# --------------------------------------------------------------------------- properties

fen_amounts = st.integers(min_value=10_000, max_value=1_000_000_000).map(lambda n: D(n).scaleb(-2))
annual_rates = st.integers(min_value=0, max_value=24_000).map(
    lambda n: D(n).scaleb(-5)
)  # 0-24 %, 0.001 % steps
fee_rates = st.integers(min_value=0, max_value=1_500).map(lambda n: D(n).scaleb(-5))  # 0-1.5 % a period
starts = st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31))
repayment_days = st.none() | st.integers(min_value=1, max_value=31)
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def is_fen(value: Decimal) -> bool:
    return value.as_tuple().exponent == -2


def check_invariants(lines: list[ScheduleLine], principal: Decimal, start: date) -> None:
    assert lines
    assert sum((line.principal for line in lines), D("0")) == principal
    assert [line.seq for line in lines] == list(range(1, len(lines) + 1))
    previous_balance, previous_due = principal, start
    for line in lines:
        for amount in (line.principal, line.interest, line.fee, line.total, line.balance_after):
            assert amount >= 0
            assert is_fen(amount), amount
        assert line.total == line.principal + line.interest + line.fee
        assert line.balance_after == previous_balance - line.principal <= previous_balance
        assert line.due_date > previous_due
        assert line.period_start == previous_due
        assert line.days == (line.due_date - line.period_start).days
        previous_balance, previous_due = line.balance_after, line.due_date
    assert lines[-1].balance_after == D("0.00")


@pytest.mark.parametrize("method", list(Method))
@PROPERTY_SETTINGS
@given(
    principal=fen_amounts,
    rate=annual_rates,
    fee_rate=fee_rates,
    months=st.integers(min_value=1, max_value=360),
    start=starts,
    day=repayment_days,
)
def test_schedule_invariants(method, principal, rate, fee_rate, months, start, day):
    fee = fee_rate if method is Method.FLAT_FEE else D(0)
    lines = build_schedule(method, principal, rate, months, start, repayment_day=day, fee_rate=fee)
    check_invariants(lines, principal, start)
    assert len(lines) == (1 if method is Method.BULLET else months)
    if method is Method.FLAT_FEE:
        assert {line.interest for line in lines} == {D("0.00")}
        assert {line.fee for line in lines} == {fen(principal * fee_rate)}
    else:
        assert {line.fee for line in lines} == {D("0.00")}
    if method is Method.INTEREST_ONLY:
        assert all(line.principal == 0 for line in lines[:-1])
    if method is Method.EQUAL_INSTALMENT:
        instalment = annuity_instalment(principal, rate, months)
        regular = [line for line in lines[1:-1] if line.balance_after > 0]
        assert all(line.total == instalment for line in regular)


@PROPERTY_SETTINGS
@given(principal=fen_amounts, rate=annual_rates, months=st.integers(min_value=1, max_value=360), start=starts)
def test_holiday_adjusted_schedule_keeps_amounts_and_order(principal, rate, months, start):
    def weekdays_only(d: date) -> bool:
        return d.weekday() < 5

    nominal = build_schedule(Method.EQUAL_INSTALMENT, principal, rate, months, start)
    moved = build_schedule(
        Method.EQUAL_INSTALMENT,
        principal,
        rate,
        months,
        start,
        holiday_rule=HolidayRule.MODIFIED_FOLLOWING,
        is_working_day=weekdays_only,
    )
    for a, b in zip(nominal, moved, strict=True):
        assert (a.principal, a.interest, a.total) == (b.principal, b.interest, b.total)
        assert weekdays_only(b.due_date)
        assert (b.due_date.year, b.due_date.month) == (a.due_date.year, a.due_date.month)
    assert all(x.due_date < y.due_date for x, y in zip(moved, moved[1:], strict=False))


@PROPERTY_SETTINGS
@given(principal=fen_amounts, rate=annual_rates, months=st.integers(min_value=1, max_value=360))
def test_periods_to_repay_round_trip(principal, rate, months):
    instalment = annuity_instalment(principal, rate, months)
    n = periods_to_repay(Method.EQUAL_INSTALMENT, principal, rate, instalment)
    assert annuity_instalment(principal, rate, n) <= instalment
    if n > 1:
        assert annuity_instalment(principal, rate, n - 1) > instalment
    # Gives back n exactly unless rounding makes n-1 periods cost the very same fen amount.
    if months == 1 or annuity_instalment(principal, rate, months - 1) != instalment:
        assert n == months
    else:
        assert n < months


@PROPERTY_SETTINGS
@given(principal=fen_amounts, months=st.integers(min_value=1, max_value=360))
def test_periods_to_repay_equal_principal_round_trip(principal, months):
    per_period = build_schedule(Method.EQUAL_PRINCIPAL, principal, D("0.05"), months, REGULAR_START)[
        0
    ].principal
    if months == 1:
        per_period = principal
    n = periods_to_repay(Method.EQUAL_PRINCIPAL, principal, D("0.05"), per_period)
    assert n <= months
    lines = build_schedule(Method.EQUAL_PRINCIPAL, principal, D("0.05"), n, REGULAR_START)
    assert lines[0].principal <= per_period


def test_accrued_interest_property_matches_formula():
    for days in range(0, 400, 7):
        expected = fen(D("123456.78") * D("0.0435") * days / 360)
        got = accrued_interest(
            D("123456.78"), D("0.0435"), date(2026, 1, 1), date(2026, 1, 1) + timedelta(days)
        )
        assert got == expected
