"""Repayment schedules (还款计划): pure arithmetic, no Django.

Rules are those of the design doc ``domain.md`` ("Schedules", "Due dates and the calendar"):
monthly rate = annual / 12, daily rate = annual / 360, interest counts the start day but not
the end day, every stored amount is rounded to the fen half-up by :func:`money.fen`.
Rates are *fractions* (0.049 for 4.9 %), never percentages, and never floats.
"""

from __future__ import annotations

import math
from calendar import monthrange
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation, localcontext
from enum import StrEnum

from servicing.domain.money import ZERO, fen

__all__ = [
    "HolidayRule",
    "Method",
    "ScheduleError",
    "ScheduleLine",
    "accrued_interest",
    "add_months",
    "adjust_for_holiday",
    "annuity_instalment",
    "build_schedule",
    "due_dates",
    "periods_to_repay",
    "schedule_for_dates",
    "schedule_totals",
]

#: Working precision for intermediate products and the annuity power; far above what 18,2 needs.
PRECISION = 40
#: A search for a term never goes beyond this many periods (100 years of months).
MAX_PERIODS = 1200
#: How far a holiday rule may walk before we conclude the calendar is broken.
_MAX_HOLIDAY_WALK = 366
_NO_FEE = Decimal(0)
_MAX_AMOUNT = Decimal(10) ** 16  # DecimalField(max_digits=18, decimal_places=2)


class Method(StrEnum):
    EQUAL_INSTALMENT = "equal_instalment"  # 等额本息
    EQUAL_PRINCIPAL = "equal_principal"  # 等额本金
    INTEREST_ONLY = "interest_only"  # 先息后本
    BULLET = "bullet"  # 到期一次还本付息
    FLAT_FEE = "flat_fee"  # 等本等息


class HolidayRule(StrEnum):
    NONE = "none"
    FOLLOWING = "following"
    MODIFIED_FOLLOWING = "modified_following"
    PRECEDING = "preceding"


class ScheduleError(ValueError):
    """Inputs a schedule cannot be built from; the message names the offending argument."""


@dataclass(frozen=True, slots=True)
class ScheduleLine:
    """One instalment (期次). ``period_start``/``days`` are the nominal period interest is charged on."""

    seq: int
    due_date: date
    period_start: date
    days: int
    principal: Decimal
    interest: Decimal
    fee: Decimal
    total: Decimal
    balance_after: Decimal


# --------------------------------------------------------------------------- validation


def _decimal(name: str, value: object) -> Decimal:
    """Accept Decimal/int/str; refuse floats (binary fractions cannot carry money or rates)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ScheduleError(f"{name} must be a Decimal, not {type(value).__name__}")
    try:
        result = value if isinstance(value, Decimal) else Decimal(value)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise ScheduleError(f"{name} '{value}' is not a number") from exc
    if not result.is_finite():
        raise ScheduleError(f"{name} '{value}' is not a finite number")
    return result


def _amount(name: str, value: object) -> Decimal:
    """A positive yuan amount with at most two decimals, normalised to exactly two."""
    amount = _decimal(name, value)
    if amount <= 0:
        raise ScheduleError(f"{name} must be greater than zero, got {amount}")
    if amount >= _MAX_AMOUNT:
        raise ScheduleError(f"{name} {amount} does not fit an amount column (18 digits, 2 decimals)")
    if amount != amount.quantize(Decimal("0.01"), rounding=ROUND_DOWN):
        raise ScheduleError(f"{name} {amount} has more than two decimals")
    return fen(amount)


def _rate(name: str, value: object) -> Decimal:
    """A non-negative fraction; above 1 is almost surely a percentage passed by mistake."""
    rate = _decimal(name, value)
    if rate < 0:
        raise ScheduleError(f"{name} must not be negative, got {rate}")
    if rate > 1:
        raise ScheduleError(f"{name} {rate} looks like a percentage; pass a fraction (0.049 for 4.9 %)")
    return rate


def _months(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScheduleError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ScheduleError(f"{name} must be at least 1, got {value}")
    return value


def _day(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 31:
        raise ScheduleError(f"{name} must be a day of month 1..31, got {value!r}")
    return value


# --------------------------------------------------------------------------- dates


def add_months(d: date, months: int, day: int | None = None) -> date:
    """``d`` moved by whole months onto ``day`` (default ``d.day``), clamped to the month's end.

    The day is always taken from the fixed repayment day, never from the previous result,
    so a 31st schedule goes Jan 31 -> Feb 28 -> Mar 31 instead of drifting to the 28th.
    """
    target_day = d.day if day is None else _day("day", day)
    index = d.year * 12 + (d.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    if not 1 <= year <= 9999:
        raise ScheduleError(f"months {months} takes {d} out of the calendar")
    return date(year, month, min(target_day, monthrange(year, month)[1]))


def due_dates(start: date, months: int, repayment_day: int | None = None) -> list[date]:
    """Nominal due dates: the repayment day of each of the ``months`` months after ``start``'s month."""
    months = _months("months", months)
    day = start.day if repayment_day is None else _day("repayment_day", repayment_day)
    return [add_months(start, i, day) for i in range(1, months + 1)]


def adjust_for_holiday(d: date, rule: HolidayRule, is_working_day: Callable[[date], bool]) -> date:
    """Move a due date off a non-working day according to the product's holiday rule.

    Modified following stays in the due date's month: if rolling forward would leave it,
    the date rolls back instead (so a month-end due date never slips into next month).
    """
    rule = HolidayRule(rule)
    if rule is HolidayRule.NONE:
        return d

    def walk(step: int) -> date:
        current = d
        for _ in range(_MAX_HOLIDAY_WALK):
            if is_working_day(current):
                return current
            current += timedelta(days=step)
        raise ScheduleError(f"is_working_day: no working day within {_MAX_HOLIDAY_WALK} days of {d}")

    if rule is HolidayRule.FOLLOWING:
        return walk(1)
    if rule is HolidayRule.PRECEDING:
        return walk(-1)
    forward = walk(1)
    return forward if forward.month == d.month else walk(-1)


# --------------------------------------------------------------------------- interest


def accrued_interest(balance: Decimal, annual_rate: Decimal, start: date, end: date) -> Decimal:
    """Interest for ``[start, end)`` on an actual/360 basis, rounded once to the fen."""
    balance = _decimal("balance", balance)
    annual_rate = _rate("annual_rate", annual_rate)
    days = (end - start).days
    if days < 0:
        raise ScheduleError(f"end {end} is before start {start}")
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return fen(balance * annual_rate * days / 360)


def _monthly_interest(balance: Decimal, annual_rate: Decimal) -> Decimal:
    """One regular month: balance x annual / 12, divided last so half-fen cases round exactly."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return fen(balance * annual_rate / 12)


def annuity_instalment(principal: Decimal, annual_rate: Decimal, periods: int) -> Decimal:
    """Equal instalment A = P·r·(1+r)^n / ((1+r)^n − 1), r = annual/12, rounded once to the fen."""
    principal = _decimal("principal", principal)
    annual_rate = _rate("annual_rate", annual_rate)
    periods = _months("periods", periods)
    with localcontext() as ctx:
        ctx.prec = PRECISION
        if annual_rate == 0:
            return fen(principal / periods)
        r = annual_rate / 12
        growth = (1 + r) ** periods
        return fen(principal * r * growth / (growth - 1))


# --------------------------------------------------------------------------- schedules


def _check_dates(period_start: date, dates: Sequence[date]) -> list[date]:
    dates = list(dates)
    if not dates:
        raise ScheduleError("dates must not be empty")
    previous = period_start
    for d in dates:
        if d <= previous:
            raise ScheduleError(
                f"dates must be strictly increasing and after period_start; {d} <= {previous}"
            )
        previous = d
    return dates


def _is_one_month(start: date, end: date) -> bool:
    """Whether ``start -> end`` is one whole month on a clamped repayment day.

    Checked both ways so that month ends work in both directions: Jan 31 -> Feb 28 (the 31st clamped)
    and Feb 28 -> Mar 31 (a re-schedule from the clamped 31st) are regular months, Feb 20 -> Mar 31 is not.
    """
    return end == add_months(start, 1) or start == add_months(end, -1)


def schedule_for_dates(
    method: Method,
    principal: Decimal,
    annual_rate: Decimal,
    period_start: date,
    dates: Sequence[date],
    fee_rate: Decimal = _NO_FEE,
    first_seq: int = 1,
) -> list[ScheduleLine]:
    """Schedule ``principal`` over the given nominal due dates, starting to accrue at ``period_start``.

    Used both for a new loan and for a re-schedule (prepayment, restructure) that starts mid-period:
    the first period is a regular month only when ``dates[0]`` is exactly one month after
    ``period_start`` (month ends clamped, see :func:`_is_one_month`); otherwise it is charged by
    actual days at annual/360. Later periods are regular months at annual/12 whatever their day
    count. ``fee_rate`` (a fraction of the principal per period) is only charged by ``flat_fee``,
    which charges no interest.
    """
    method = Method(method)
    principal = _amount("principal", principal)
    annual_rate = _rate("annual_rate", annual_rate)
    fee_rate = _rate("fee_rate", fee_rate)
    if method is not Method.FLAT_FEE and fee_rate != 0:
        raise ScheduleError(f"fee_rate is only charged by flat_fee, not by {method.value}")
    dates = _check_dates(period_start, dates)
    if method is Method.BULLET and len(dates) != 1:
        raise ScheduleError(f"dates: bullet has exactly one due date, got {len(dates)}")
    n = len(dates)
    first_is_regular = _is_one_month(period_start, dates[0])

    def interest_for(index: int, balance: Decimal, start: date, end: date) -> Decimal:
        if method is Method.FLAT_FEE:
            return ZERO
        if method is Method.BULLET or (index == 0 and not first_is_regular):
            return accrued_interest(balance, annual_rate, start, end)
        return _monthly_interest(balance, annual_rate)

    # Per-period principal before the last period (the last always takes what is left).
    if method is Method.EQUAL_INSTALMENT:
        instalment = annuity_instalment(principal, annual_rate, n)
    with localcontext() as ctx:
        ctx.prec = PRECISION
        level_principal = fen(principal / n)
    fee = fen(principal * fee_rate) if method is Method.FLAT_FEE else ZERO

    lines: list[ScheduleLine] = []
    balance = principal
    start = period_start
    for index, due in enumerate(dates):
        interest = interest_for(index, balance, start, due)
        if index == n - 1:
            paid = balance
        elif method is Method.EQUAL_INSTALMENT:
            # An odd long first period can cost more interest than the instalment: no negative principal.
            paid = max(instalment - interest, ZERO)
        elif method in (Method.EQUAL_PRINCIPAL, Method.FLAT_FEE):
            paid = level_principal
        else:  # interest_only (bullet has a single, last, period)
            paid = ZERO
        # Rounding P/n (or A) up can exhaust a tiny loan before the last period: stop at zero.
        paid = min(paid, balance)
        balance -= paid
        lines.append(
            ScheduleLine(
                seq=first_seq + index,
                due_date=due,
                period_start=start,
                days=(due - start).days,
                principal=paid,
                interest=interest,
                fee=fee,
                total=paid + interest + fee,
                balance_after=balance,
            )
        )
        start = due
    return lines


def build_schedule(
    method: Method,
    principal: Decimal,
    annual_rate: Decimal,
    months: int,
    start: date,
    repayment_day: int | None = None,
    fee_rate: Decimal = _NO_FEE,
    holiday_rule: HolidayRule = HolidayRule.NONE,
    is_working_day: Callable[[date], bool] | None = None,
) -> list[ScheduleLine]:
    """A new loan's schedule from its value date ``start``.

    Interest is always computed on the nominal dates; the holiday rule only moves the
    reported ``due_date`` so a borrower's instalment amounts do not depend on the calendar.
    """
    method = Method(method)
    holiday_rule = HolidayRule(holiday_rule)
    months = _months("months", months)
    if repayment_day is not None:
        _day("repayment_day", repayment_day)
    if holiday_rule is not HolidayRule.NONE and is_working_day is None:
        raise ScheduleError(f"is_working_day is required for holiday_rule {holiday_rule.value}")
    if method is Method.BULLET:
        nominal = [add_months(start, months, repayment_day)]
    else:
        nominal = due_dates(start, months, repayment_day)
    lines = schedule_for_dates(method, principal, annual_rate, start, nominal, fee_rate)
    if holiday_rule is HolidayRule.NONE:
        return lines
    assert is_working_day is not None
    return [
        replace(line, due_date=adjust_for_holiday(line.due_date, holiday_rule, is_working_day))
        for line in lines
    ]


# --------------------------------------------------------------------------- prepayment helpers


def _smallest_n(fits: Callable[[int], bool], what: str) -> int:
    """Smallest n >= 1 with ``fits(n)``, for a ``fits`` that stays true once true."""
    low, high = 1, 1
    while not fits(high):
        if high >= MAX_PERIODS:
            raise ScheduleError(f"instalment is too small to repay the {what} within {MAX_PERIODS} periods")
        low, high = high + 1, min(high * 2, MAX_PERIODS)
    while low < high:
        mid = (low + high) // 2
        if fits(mid):
            high = mid
        else:
            low = mid + 1
    return high


def periods_to_repay(method: Method, balance: Decimal, annual_rate: Decimal, instalment: Decimal) -> int:
    """Periods needed to repay ``balance`` while keeping ``instalment`` (prepayment that shortens the term).

    equal_instalment: smallest n whose annuity is at most ``instalment``.
    equal_principal / flat_fee: ``instalment`` is the per-period principal; smallest n whose
    rounded P/n is at most it, which is ceil(balance / instalment) except where the old
    per-period principal was itself rounded down (100,000 / 12 = 8,333.33 gives 12, not 13).
    """
    method = Method(method)
    balance = _amount("balance", balance)
    annual_rate = _rate("annual_rate", annual_rate)
    instalment = _amount("instalment", instalment)
    if method is Method.EQUAL_INSTALMENT:
        return _smallest_n(lambda n: annuity_instalment(balance, annual_rate, n) <= instalment, "balance")
    if method in (Method.EQUAL_PRINCIPAL, Method.FLAT_FEE):
        n = math.ceil(balance / instalment)
        if n > MAX_PERIODS:
            raise ScheduleError(f"instalment is too small to repay the balance within {MAX_PERIODS} periods")
        while n > 1 and fen(balance / (n - 1)) <= instalment:
            n -= 1
        return max(n, 1)
    raise ScheduleError(f"method {method.value} has no instalment to keep; its term cannot be shortened")


def schedule_totals(lines: Iterable[ScheduleLine]) -> dict[str, Decimal]:
    """Column sums, for the contract summary and for checks against the ledger."""
    totals = {"principal": ZERO, "interest": ZERO, "fee": ZERO, "total": ZERO}
    for line in lines:
        totals["principal"] += line.principal
        totals["interest"] += line.interest
        totals["fee"] += line.fee
        totals["total"] += line.total
    return totals
