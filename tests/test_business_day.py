"""The business day (日终): billing, overdue marking and DPD, penalty and compound accrual with grace and
the holiday calendar, idempotency per date, and a year over a small book of every product."""

from __future__ import annotations

import random
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest

from servicing.models import BusinessCalendarDay, BusinessDayRun, Instalment, JournalEntry, Loan
from servicing.selectors import loan_status, quote_payoff
from servicing.services.business_day import run_business_day
from servicing.services.payments import PaymentError
from tests.factories import (
    BorrowerFactory,
    annuity,
    assert_books_ok,
    balances,
    book,
    daily_penalty,
    date_range,
    inst,
    live,
    pay,
    seed_reference_data,
    snapshot,
)

D = Decimal
pytestmark = pytest.mark.django_db

START = date(2026, 1, 10)
CAR_RATE = D("8")


@pytest.fixture
def reference(db):
    return seed_reference_data()


def run(start: date, end: date | None = None) -> None:
    for d in date_range(start, end or start):
        run_business_day(d)


def state(loan) -> tuple:
    loan.refresh_from_db()
    return loan.status, loan.dpd


# --------------------------------------------------------------------------- billing, overdue, DPD


def test_due_date_bills_then_the_next_day_is_overdue_with_dpd_1(reference):
    loan = book("car", "12000", 12, START)
    run(date(2026, 2, 9))
    assert not inst(loan, 1).billed and "interest_receivable" not in balances(loan)

    run(date(2026, 2, 10))
    i1 = inst(loan, 1)
    assert (i1.billed, i1.status) == (True, "pending")
    assert state(loan) == ("active", 0)
    billing = JournalEntry.objects.get(loan=loan, kind="billing")
    assert billing.value_date == date(2026, 2, 10)
    assert dict(billing.lines.values_list("account", "amount")) == {"interest_receivable": D("80.00"),
                                                                   "interest_income": D("-80.00")}
    assert loan_status(loan)["outstanding"]["interest"] == "80.00"  # interest due so far, not future interest

    run(date(2026, 2, 11))
    assert inst(loan, 1).status == "overdue" and inst(loan, 2).status == "pending"
    assert state(loan) == ("overdue", 1)
    run(date(2026, 2, 12))
    assert state(loan) == ("overdue", 2)
    status = loan_status(loan)
    assert status["dpd"] == 2 and status["overdue"]["principal"] == f"{inst(loan, 1).principal_due:.2f}"
    assert [i["status"] for i in status["instalments"][:2]] == ["overdue", "pending"]

    pay(loan, inst(loan, 1).total_outstanding, date(2026, 2, 12))  # within grace: cures the loan
    assert state(loan) == ("active", 0)
    run(date(2026, 2, 13), date(2026, 2, 20))
    assert state(loan) == ("active", 0) and inst(loan, 1).penalty_accrued == 0
    assert_books_ok()


def test_dpd_counts_from_the_oldest_unpaid_instalment(reference):
    loan = book("car", "12000", 12, START)
    run(date(2026, 2, 10))
    run(date(2026, 3, 11))
    assert state(loan) == ("overdue", 29)  # 2026-02-10 → 03-11
    pay(loan, inst(loan, 1).total_outstanding, date(2026, 3, 12))
    run(date(2026, 3, 12))
    assert state(loan) == ("overdue", 2)   # instalment 2 (due 03-10) is now the oldest unpaid
    assert_books_ok()


# --------------------------------------------------------------------------- grace and penalty


def test_paid_within_grace_no_penalty(reference):
    loan = book("car", "12000", 12, START)
    run(date(2026, 2, 10), date(2026, 2, 13))  # grace: 3 days, ends Friday 02-13 (a working day)
    assert inst(loan, 1).penalty_accrued == 0
    pay(loan, inst(loan, 1).total_outstanding, date(2026, 2, 13))
    run(date(2026, 2, 14), date(2026, 3, 1))
    i1 = inst(loan, 1)
    assert (i1.status, i1.penalty_accrued, i1.compound_accrued) == ("paid", 0, 0)
    assert not JournalEntry.objects.filter(loan=loan, kind="accrual").exists()
    assert_books_ok()


def test_first_day_past_grace_accrues_from_the_day_after_the_due_date(reference):
    loan = book("car", "12000", 12, START)
    run(date(2026, 2, 10), date(2026, 2, 14))
    i1 = inst(loan, 1)
    # 02-11 … 02-14: 4 days; 963.86 × 8 % × 1.5 / 360 × 4 = 1.285
    assert i1.penalty_accrued == daily_penalty(i1.principal_due, CAR_RATE, 4) == D("1.29")
    assert i1.compound_accrued == daily_penalty(D("80.00"), CAR_RATE, 4) == D("0.11")
    assert i1.penalty_accrued_through == date(2026, 2, 14)


def test_penalty_past_grace_is_principal_times_rate_times_markup_per_day(reference):
    """Business days 02-10 and then 03-01 only: one catch-up for 02-11 … 03-01 (19 days)."""
    loan = book("car", "12000", 12, START)
    run(date(2026, 2, 10))
    run(date(2026, 3, 1))
    i1 = inst(loan, 1)
    assert i1.penalty_accrued == daily_penalty(i1.principal_due, CAR_RATE, 19) == D("6.10")  # 6.1044
    assert i1.compound_accrued == daily_penalty(D("80.00"), CAR_RATE, 19) == D("0.51")       # 0.5067
    assert i1.penalty_accrued_through == date(2026, 3, 1)
    entry = JournalEntry.objects.get(loan=loan, kind="accrual")
    assert entry.value_date == date(2026, 3, 1)
    assert dict(entry.lines.values_list("account", "amount")) == {
        "penalty_receivable": D("6.10"), "penalty_income": D("-6.10"),
        "compound_receivable": D("0.51"), "compound_income": D("-0.51")}
    assert loan_status(loan)["outstanding"]["penalty"] == "6.10"
    assert_books_ok()


def test_daily_penalty_and_compound_accrue_every_day_on_a_mortgage(reference):
    """Equal principal 600,000 over 60 at 6 %: instalment 1 = 10,000 principal + 3,000 interest.

    Per day: penalty 10,000 × 6 % × 1.5 / 360 = 2.50; compound 3,000 × 9 % / 360 = 0.75 (exact to the fen,
    so running every day or catching up gives the same figure).
    """
    loan = book("mortgage", "600000", 60, START, method="equal_principal", annual_rate_pct=D("6"))
    i1 = inst(loan, 1)
    assert (i1.principal_due, i1.interest_due) == (D("10000.00"), D("3000.00"))
    run(date(2026, 2, 10), date(2026, 3, 1))   # 19 days late on 03-01
    i1.refresh_from_db()
    assert (i1.penalty_accrued, i1.compound_accrued) == (D("47.50"), D("14.25"))
    run(date(2026, 3, 2))
    i1.refresh_from_db()
    assert (i1.penalty_accrued, i1.compound_accrued) == (D("50.00"), D("15.00"))
    assert loan_status(loan)["outstanding"]["compound"] == "15.00"
    assert_books_ok()


def test_no_compound_interest_on_a_product_without_it(reference):
    loan = book("credit_line", "120000", 12, START)  # 14.4 %, compound off
    assert not loan.product.compound_interest
    run(date(2026, 2, 10), date(2026, 3, 1))
    i1 = inst(loan, 1)
    exact = i1.principal_due * D("0.144") * D("1.5") * 19 / 360
    assert i1.compound_accrued == 0 and i1.interest_due > 0
    assert abs(i1.penalty_accrued - exact) <= D("0.005") * 19  # daily amounts rounded to the fen
    assert_books_ok()


def test_no_penalty_on_fees_and_penalty_stops_when_paid(reference):
    loan = book("instalment", "6000", 12, START)  # 500 principal + 36 fee a period, penalty base 7.2 %
    run(date(2026, 2, 10))
    run(date(2026, 3, 1))
    i1 = inst(loan, 1)
    # 19 days on the 500 principal only (the 36 fee bears nothing): 500 × 7.2 % × 1.5 × 19 / 360 = 2.85
    assert (i1.penalty_accrued, i1.compound_accrued) == (D("2.85"), D("0.00"))
    pay(loan, i1.total_outstanding, date(2026, 3, 2))
    run(date(2026, 3, 2), date(2026, 3, 9))
    i1.refresh_from_db()
    assert (i1.status, i1.penalty_accrued) == ("paid", D("2.85"))
    assert state(loan) == ("active", 0)
    assert_books_ok()


def test_grace_end_in_spring_festival_rolls_to_the_next_working_day(reference):
    """Due Sunday 2026-02-15 (Spring Festival 02-15 … 02-23), grace 3 → 02-18 is a holiday → 02-24."""
    assert not BusinessCalendarDay.objects.get(date=date(2026, 2, 18)).is_working_day
    assert not BusinessCalendarDay.objects.get(date=date(2026, 2, 23)).is_working_day
    assert BusinessCalendarDay.objects.get(date=date(2026, 2, 24)).is_working_day
    late = book("car", "12000", 12, date(2026, 1, 15))
    payer = book("car", "12000", 12, date(2026, 1, 15))
    assert inst(late, 1).due_date == date(2026, 2, 15)  # the car product keeps due dates (holiday rule none)
    run(date(2026, 2, 15), date(2026, 2, 23))
    pay(payer, inst(payer, 1).total_outstanding, date(2026, 2, 24))  # the first working day: still in grace
    run(date(2026, 2, 24))
    assert inst(late, 1).penalty_accrued == 0 and inst(payer, 1).penalty_accrued == 0
    assert inst(payer, 1).status == "paid"

    run(date(2026, 2, 25))  # grace over: catch up from 02-16 through 02-25, 10 days
    i1 = inst(late, 1)
    assert i1.penalty_accrued == daily_penalty(i1.principal_due, CAR_RATE, 10)
    assert i1.compound_accrued == daily_penalty(i1.interest_due, CAR_RATE, 10)
    assert inst(payer, 1).penalty_accrued == 0
    assert_books_ok()


# --------------------------------------------------------------------------- idempotency


def _book_of_loans():
    loans = [book("car", "12000", 12, START), book("instalment", "6000", 6, START),
             book("mortgage", "300000", 60, START, method="equal_principal"),
             book("credit_line", "20000", 6, START, method="interest_only")]
    return loans


@pytest.mark.parametrize("day", [date(2026, 2, 10), date(2026, 2, 11), date(2026, 2, 20), date(2026, 3, 10)])
def test_running_the_same_date_twice_changes_nothing(reference, day):
    loans = _book_of_loans()
    pay(loans[0], "2000.00", date(2026, 2, 10))        # leaves a credit balance to apply on 03-10
    pay(loans[1], "100.00", date(2026, 2, 10))         # a partial payment
    run(date(2026, 2, 10), day - timedelta(days=1))
    run_business_day(day)
    first = snapshot()
    runs = BusinessDayRun.objects.filter(business_date=day).count()
    again = run_business_day(day)
    assert snapshot() == first
    assert BusinessDayRun.objects.filter(business_date=day).count() == runs
    assert again["steps"]["bill_due"]["billed"] == 0 and again["steps"]["accrue_penalties"]["instalments"] == 0
    assert_books_ok()


def _left_open_after_payoff(on: date) -> Loan:
    """A loan paid off on `on` whose settlement did not happen (what the day's safety net is for)."""
    loan = book("instalment", "3000", 3, START)
    pay(loan, quote_payoff(loan, on).total, on, prepay="payoff")
    Loan.objects.filter(pk=loan.pk).update(status="active", settled_on=None)
    return loan


def test_the_day_settles_a_paid_off_loan_left_open_since_its_last_check(reference):
    d = date(2026, 2, 10)
    assert run_business_day(d)["steps"]["settlements"]["paid_since"] == "2026-02-03"  # no check before: a week
    caught = _left_open_after_payoff(d)            # paid after the day's run, then the day is run again
    again = run_business_day(d)["steps"]["settlements"]
    assert (again["settled"], again["paid_since"]) == (1, "2026-02-09")
    caught.refresh_from_db()
    assert (caught.status, caught.settled_on) == ("settled", d)
    # the next day reads from the day before the last check: a payment value-dated then is still found
    late = _left_open_after_payoff(d - timedelta(days=1))
    nxt = run_business_day(d + timedelta(days=1))["steps"]["settlements"]
    assert (nxt["settled"], nxt["paid_since"]) == (1, "2026-02-09")
    late.refresh_from_db()
    assert (late.status, late.settled_on) == ("settled", d - timedelta(days=1))
    # after days without a run: at most a week back
    assert run_business_day(date(2026, 3, 1))["steps"]["settlements"]["paid_since"] == "2026-02-22"


# --------------------------------------------------------------------------- a year over a small book


def _year_dates(loans, start: date, end: date) -> list[date]:
    """Every fortnight plus every due date, the day after it and the first day past a 3-day grace."""
    wanted = set(d for i, d in enumerate(date_range(start, end)) if i % 14 == 0)
    for loan in loans:
        for i in live(loan):
            for k in (0, 1, 4):
                wanted.add(i.due_date + timedelta(days=k))
    return sorted(d for d in wanted if start <= d <= end)


def test_a_year_of_business_days_with_random_payments_keeps_the_books(reference):
    rng = random.Random(20260110)
    specs = [("mortgage", "480000", 120, "equal_instalment", 10), ("mortgage", "360000", 60, "equal_principal", 28),
             ("car", "96000", 36, "equal_instalment", 15), ("car", "30000", 12, "equal_instalment", 28),
             ("credit_line", "20000", 12, "equal_instalment", 10), ("credit_line", "8000", 6, "interest_only", 15),
             ("credit_line", "5000", 3, "bullet", 10), ("instalment", "6000", 12, "flat_fee", 15),
             ("instalment", "2400", 6, "flat_fee", 10), ("car", "50000", 24, "equal_instalment", 28)]
    loans = []
    for n, (code, principal, months, method, day) in enumerate(specs):
        start = date(2026, 1, 1) + timedelta(days=n * 3)
        loans.append(book(code, principal, months, start, method=method, repayment_day=day,
                          borrower=BorrowerFactory()))
    end = date(2027, 1, 31)
    refs = 0
    t0 = time.perf_counter()
    dates = _year_dates(loans, date(2026, 1, 1), end)
    for d in dates:
        open_loans = {loan.pk: loan for loan in Loan.objects.filter(pk__in=[x.pk for x in loans],
                                                                   disbursed_on__lte=d).exclude(status="settled")}
        owed: dict[int, list[Instalment]] = {}
        for i in Instalment.objects.filter(loan_id__in=open_loans, due_date__lte=d).exclude(
                status__in=["superseded", "paid"]):
            owed.setdefault(i.loan_id, []).append(i)
        for loan in open_loans.values():
            due_today = owed.get(loan.pk, [])
            roll = rng.random()
            amount = None
            if due_today and roll < 0.55:
                total = sum((i.total_outstanding for i in due_today), D("0"))
                amount = max(D("0.01"), (total * D(rng.choice(["0.5", "1", "1", "1", "1.3"]))).quantize(D("0.01")))
            elif roll > 0.985:
                amount = D(rng.choice(["100.00", "1000.00", "3333.33"]))
            if amount is not None:
                refs += 1
                prepay = rng.choice(["", "", "", "reduce", "shorten"]) if roll > 0.985 else ""
                try:
                    pay(loan, amount, d, ref=f"Y-{refs}", prepay=prepay)
                except PaymentError as exc:
                    assert str(exc).startswith("amount: "), exc  # e.g. nothing left to prepay
        run_business_day(d)
        first = snapshot()
        run_business_day(d)
        assert snapshot() == first, f"second run of {d} changed something"
        assert_books_ok()
    print(f"{len(dates)} business dates twice in {time.perf_counter() - t0:.1f} s")
    for loan in loans:
        loan.refresh_from_db()
    statuses = {loan.contract_no: loan_status(loan)["status"] for loan in loans}
    assert "settled" in statuses.values() and refs > 40
    for loan in loans:  # status and DPD as an operator would work them out from the schedule
        loan.refresh_from_db()
        unpaid = [i.due_date for i in live(loan) if i.status != "paid" and i.due_date < d]
        if loan.status == "settled":
            assert not unpaid and loan.dpd == 0
        else:
            assert (loan.status, loan.dpd) == (("overdue", (d - min(unpaid)).days) if unpaid else ("active", 0))
    assert_books_ok()


def test_annuity_helper_matches_the_public_reference():
    """The independent annuity used for expectations reproduces domain.md's figures."""
    assert annuity(D(670000), D("4.9"), 360) == D("3555.87")
    assert annuity(D(100000), D("6"), 12) == D("8606.64")
