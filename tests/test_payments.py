"""Payments against booked loans: the waterfall to the fen, credit balance, prepayment, payoff and
settlement, idempotency on the reference, and a property over random payment sequences."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servicing.models import Allocation, JournalEntry, Loan, Payment
from servicing.selectors import loan_status, quote_payoff
from servicing.services.business_day import run_business_day
from servicing.services.payments import PaymentError
from tests.factories import (
    annuity,
    assert_books_ok,
    balances,
    book,
    daily_penalty,
    fen,
    inst,
    live,
    pay,
    row_counts,
    seed_reference_data,
    snapshot,
)

D = Decimal
pytestmark = pytest.mark.django_db

START = date(2026, 1, 10)  # instalments fall due on the 10th: 2026-02-10, 03-10, 04-10, …
CAR_RATE = D("8")          # the car product's contract rate (percent a year)
RECEIVABLES = ("principal_receivable", "interest_receivable", "fee_receivable", "penalty_receivable",
               "compound_receivable")


@pytest.fixture
def reference(db):
    return seed_reference_data()


def allocations(payment) -> list[tuple[int, str, Decimal]]:
    """(seq, component, amount) in the order the waterfall applied them: instalments in the order of their rows,
    components in the product's order."""
    order = payment.loan.product.order()
    return [(a.instalment.seq, c, amount) for a in payment.allocations.order_by("pk")
            for c, amount in a.parts(order).items()]


def receivables(loan) -> dict[str, Decimal]:
    b = balances(loan)
    return {k: b.get(k, D("0")) for k in RECEIVABLES}


# --------------------------------------------------------------------------- the waterfall


def test_waterfall_over_two_overdue_instalments_to_the_fen(reference):
    """Car loan 12,000 at 8 % over 12 months; nothing paid until 2026-04-01; then 2,000 arrives.

    Instalment 1 (due 02-10) is 49 days late through 03-31, instalment 2 (due 03-10) 21 days: the value
    date itself is not charged. Penalty = principal × 8 % × 1.5 / 360 × days; compound (car: on) the
    same on the overdue interest. Oldest instalment first, penalty → compound → fee → interest → principal.
    """
    loan = book("car", "12000", 12, START)
    i1, i2 = inst(loan, 1), inst(loan, 2)
    a = annuity(D(12000), CAR_RATE, 12)
    assert (i1.interest_due, i1.principal_due) == (D("80.00"), a - D("80.00"))  # 12,000 × 8 % / 12
    assert i2.interest_due == fen((D(12000) - i1.principal_due) * CAR_RATE / 1200)

    pen1, cmp1 = daily_penalty(i1.principal_due, CAR_RATE, 49), daily_penalty(i1.interest_due, CAR_RATE, 49)
    pen2, cmp2 = daily_penalty(i2.principal_due, CAR_RATE, 21), daily_penalty(i2.interest_due, CAR_RATE, 21)
    # by hand: 963.86 × 0.12 × 49 / 360 = 15.743; 80 × 0.12 × 49 / 360 = 1.307; 970.29 × 0.12 × 21 / 360
    # = 6.792; 73.57 × 0.12 × 21 / 360 = 0.51499
    assert (pen1, cmp1, pen2, cmp2) == (D("15.74"), D("1.31"), D("6.79"), D("0.51"))

    result = pay(loan, "2000.00", date(2026, 4, 1))
    first = pen1 + cmp1 + i1.interest_due + i1.principal_due
    principal2 = D("2000.00") - first - pen2 - cmp2 - i2.interest_due
    assert 0 < principal2 < i2.principal_due
    assert allocations(result.payment) == [
        (1, "penalty", pen1), (1, "compound", cmp1), (1, "interest", D("80.00")), (1, "principal", i1.principal_due),
        (2, "penalty", pen2), (2, "compound", cmp2), (2, "interest", i2.interest_due), (2, "principal", principal2),
    ]
    p = result.payment
    assert (p.amount, p.applied_amount, p.credited_amount) == (D("2000.00"), D("2000.00"), D("0.00"))

    i1.refresh_from_db(), i2.refresh_from_db()
    assert (i1.status, i1.paid_on, i1.total_outstanding) == ("paid", date(2026, 4, 1), D("0.00"))
    assert i2.status == "overdue" and i2.outstanding("principal") == i2.principal_due - principal2
    assert inst(loan, 3).status == "pending" and inst(loan, 3).total_paid == 0
    loan.refresh_from_db()
    assert (loan.status, loan.dpd) == ("overdue", 22)  # 2026-03-10 → 04-01

    lines = dict(p.entry.lines.values_list("account", "amount"))
    assert lines == {
        "clearing_counter": D("2000.00"),
        "penalty_receivable": -(pen1 + pen2), "compound_receivable": -(cmp1 + cmp2),
        "interest_receivable": -(D("80.00") + i2.interest_due),
        "principal_receivable": -(i1.principal_due + principal2),
    }
    # what is left receivable: unpaid principal of the whole loan, nothing else (interest 3+ not billed yet)
    assert receivables(loan) == {"principal_receivable": D(12000) - i1.principal_due - principal2,
                                 "interest_receivable": D("0"), "fee_receivable": D("0"),
                                 "penalty_receivable": D("0"), "compound_receivable": D("0")}
    assert_books_ok()


def test_flat_fee_waterfall_penalty_then_fee_then_principal(reference):
    """分期 6,000 over 12 at 0.6 % a period: 500 principal + 36 fee. Penalty base = fee × 12 = 7.2 % a year.

    Paid 600 on 2026-04-01: instalment 1 owes 49 days of penalty (500 × 7.2 % × 1.5 × 49 / 360 = 7.35),
    instalment 2 owes 21 days (3.15).
    """
    loan = book("instalment", "6000", 12, START)
    result = pay(loan, "600.00", date(2026, 4, 1))
    assert allocations(result.payment) == [
        (1, "penalty", D("7.35")), (1, "fee", D("36.00")), (1, "principal", D("500.00")),
        (2, "penalty", D("3.15")), (2, "fee", D("36.00")), (2, "principal", D("17.50")),
    ]
    assert_books_ok()


def test_paying_on_the_due_date_or_within_grace_charges_no_penalty(reference):
    loan = book("car", "12000", 12, START)
    a = annuity(D(12000), CAR_RATE, 12)
    pay(loan, a, date(2026, 2, 10))                        # on the due date
    r = pay(loan, a, date(2026, 3, 13))                    # the last of 3 days of grace (a Friday)
    assert {c for _, c, _ in allocations(r.payment)} == {"interest", "principal"}
    assert inst(loan, 2).penalty_accrued == 0 and inst(loan, 2).status == "paid"
    assert_books_ok()


@pytest.mark.parametrize(("due_seq", "paid_on"), [
    (2, date(2026, 3, 14)),   # grace ended Fri 03-13 (a working day): penalty for 03-11 … 03-13
    (3, date(2026, 4, 14)),   # grace ended Mon 04-13 (a working day): penalty for 04-11 … 04-13
])
def test_paying_the_day_after_grace_charges_penalty_from_the_day_after_the_due_date(reference, due_seq, paid_on):
    loan = book("car", "12000", 12, START)
    a = annuity(D(12000), CAR_RATE, 12)
    for seq in range(1, due_seq):
        pay(loan, a, inst(loan, seq).due_date)
    due = inst(loan, due_seq)
    r = pay(loan, a, paid_on)
    due.refresh_from_db()
    # the value date is not charged: 3 days, from the day after the due date to the day before the value date
    days = (paid_on - due.due_date).days - 1
    assert due.penalty_accrued == daily_penalty(due.principal_due, CAR_RATE, days) > 0
    assert allocations(r.payment)[0] == (due_seq, "penalty", due.penalty_accrued)


# --------------------------------------------------------------------------- credit balance


def test_overpayment_becomes_credit_applied_on_the_next_due_dates(reference):
    loan = book("car", "12000", 12, START)
    a = annuity(D(12000), CAR_RATE, 12)
    r = pay(loan, a + D("1500.00"), date(2026, 2, 10))
    p = r.payment
    assert (p.applied_amount, p.credited_amount) == (a, D("1500.00"))
    loan.refresh_from_db()
    assert loan.credit_balance == D("1500.00")
    assert balances(loan)["credit_balance"] == D("-1500.00")  # a liability to the borrower
    assert inst(loan, 1).status == "paid" and inst(loan, 2).total_paid == 0

    run_business_day(date(2026, 3, 9))  # nothing due yet
    loan.refresh_from_db()
    assert loan.credit_balance == D("1500.00") and inst(loan, 2).total_paid == 0

    run_business_day(date(2026, 3, 10))  # instalment 2 falls due and is paid from the credit
    i2 = inst(loan, 2)
    assert (i2.status, i2.interest_paid, i2.principal_paid, i2.paid_on) == (
        "paid", i2.interest_due, i2.principal_due, date(2026, 3, 10))
    loan.refresh_from_db()
    assert loan.credit_balance == D("1500.00") - a == D("456.14")
    entry = JournalEntry.objects.get(loan=loan, kind="credit_application")
    assert entry.value_date == date(2026, 3, 10)
    assert dict(entry.lines.values_list("account", "amount")) == {
        "credit_balance": a, "interest_receivable": -i2.interest_due, "principal_receivable": -i2.principal_due}
    assert list(Allocation.objects.filter(entry=entry, payment__isnull=True).values_list(
        "instalment", "interest", "principal", "amount")) == [(i2.pk, i2.interest_due, i2.principal_due, a)]

    run_business_day(date(2026, 4, 10))  # the rest goes to instalment 3 (interest first)
    i3 = inst(loan, 3)
    assert (i3.status, i3.interest_paid, i3.principal_paid) == (
        "partially_paid", i3.interest_due, D("456.14") - i3.interest_due)
    loan.refresh_from_db()
    assert (loan.credit_balance, loan.status) == (D("0.00"), "active")
    run_business_day(date(2026, 4, 11))
    loan.refresh_from_db()
    assert (inst(loan, 3).status, loan.status, loan.dpd) == ("overdue", "overdue", 1)
    assert_books_ok()


# --------------------------------------------------------------------------- prepayment


def _prepaid(mode: str):
    """Car loan 12,000 at 8 %: instalment 1 plus 5,000 paid on its due date, prepaying in `mode`."""
    loan = book("car", "12000", 12, START)
    a = annuity(D(12000), CAR_RATE, 12)
    old_dates = [i.due_date for i in live(loan)]
    r = pay(loan, a + D("5000.00"), date(2026, 2, 10), prepay=mode)
    return loan, a, old_dates, r


def test_prepay_reduce_lowers_the_instalment_and_keeps_the_term(reference):
    loan, a, old_dates, r = _prepaid("reduce")
    assert (r.payment.applied_amount, r.payment.credited_amount) == (a + D("5000.00"), D("0.00"))
    rows = live(loan)
    pre = [i for i in rows if i.due_date == date(2026, 2, 10) and i.seq != 1]
    assert len(pre) == 1 and (pre[0].principal_due, pre[0].interest_due, pre[0].status) == (
        D("5000.00"), D("0.00"), "paid")  # prepaid on a due date: no interest accrued yet
    regular = [i for i in rows if i.due_date > date(2026, 2, 10)]
    assert [i.due_date for i in regular] == old_dates[1:]  # same 11 remaining due dates
    remaining = D(12000) - inst(loan, 1).principal_due - D("5000.00")
    new_a = annuity(remaining, CAR_RATE, 11)
    assert new_a < a
    assert all(i.principal_due + i.interest_due == new_a for i in regular[:-1])
    assert abs(regular[-1].principal_due + regular[-1].interest_due - new_a) < D("0.10")
    assert regular[0].interest_due == fen(remaining * CAR_RATE / 1200)
    assert sum(i.principal_due for i in regular) == remaining
    assert sum(i.principal_due for i in rows) == D("12000.00")
    assert loan.instalments.filter(status="superseded").count() == 11
    assert_books_ok()


def test_prepay_shorten_keeps_the_instalment_and_drops_the_last_ones(reference):
    loan, a, old_dates, r = _prepaid("shorten")
    rows = live(loan)
    regular = [i for i in rows if i.due_date > date(2026, 2, 10)]
    remaining = D(12000) - inst(loan, 1).principal_due - D("5000.00")
    n = next(k for k in range(1, 12) if annuity(remaining, CAR_RATE, k) <= a)  # fewest periods that fit
    assert n < 11
    assert [i.due_date for i in regular] == old_dates[1:1 + n]
    new_a = annuity(remaining, CAR_RATE, n)
    assert a - new_a < a * D("0.2")  # a similar instalment, not a lower one as with "reduce"
    assert all(i.principal_due + i.interest_due == new_a for i in regular[:-1])
    assert sum(i.principal_due for i in regular) == remaining
    assert sum(i.principal_due for i in rows) == D("12000.00")
    assert_books_ok()


def test_prepay_mid_period_charges_interest_to_the_value_date(reference):
    loan = book("car", "12000", 12, START)
    a = annuity(D(12000), CAR_RATE, 12)
    pay(loan, a, date(2026, 2, 10))
    balance = D(12000) - inst(loan, 1).principal_due
    r = pay(loan, "3000.00", date(2026, 2, 25), prepay="reduce")
    interest = fen(balance * CAR_RATE / 100 * 15 / 360)  # 02-10 → 02-25: 15 days at 8 % / 360
    assert interest == D("36.79")
    pre = r.payment.allocations.get(interest__gt=0).instalment
    assert (pre.due_date, pre.interest_due, pre.principal_due) == (date(2026, 2, 25), interest, D("3000.00") - interest)
    regular = [i for i in live(loan) if i.due_date > date(2026, 2, 25)]
    assert len(regular) == 11
    rest = balance - pre.principal_due
    assert sum(i.principal_due for i in regular) == rest
    # the next period accrues from the value date: 02-25 → 03-10 is 13 days at the daily rate
    assert regular[0].interest_due == fen(rest * CAR_RATE / 100 * 13 / 360)
    assert_books_ok()


def test_prepay_with_nothing_left_over_is_refused_and_writes_nothing(reference):
    loan = book("car", "12000", 12, START)
    a = annuity(D(12000), CAR_RATE, 12)
    pay(loan, a, date(2026, 2, 10))
    before = row_counts()
    # 02-10 → 02-25 accrues 36.79 of interest on 11,036.14: 30.00 does not reach any principal
    with pytest.raises(PaymentError, match="^amount: .*nothing is left to prepay"):
        pay(loan, "30.00", date(2026, 2, 25), prepay="reduce")
    assert row_counts() == before


# --------------------------------------------------------------------------- payoff and settlement


PAYOFF_CASES = [
    # product, principal, months, method, payments made before (date, amount or "due"), payoff date
    ("mortgage", "240000", 60, "equal_principal", [], date(2026, 3, 20)),            # 1 overdue, mid-period
    ("mortgage", "300000", 120, "equal_instalment", [(date(2026, 2, 10), "due")], date(2026, 3, 10)),
    ("car", "12000", 12, "equal_instalment", [(date(2026, 2, 10), "due")], date(2026, 2, 25)),
    ("credit_line", "20000", 6, "equal_instalment", [], date(2026, 2, 12)),            # within grace
    ("credit_line", "20000", 3, "interest_only", [(date(2026, 2, 10), "due")], date(2026, 3, 10)),
    ("credit_line", "20000", 6, "bullet", [], date(2026, 4, 1)),
    ("instalment", "6000", 6, "flat_fee", [(date(2026, 2, 10), "due")], date(2026, 2, 20)),
    ("instalment", "3000", 3, "flat_fee", [], date(2026, 5, 20)),                      # after maturity
]


def _payoff_setup(code, principal, months, method, before):
    loan = book(code, principal, months, START, method=method)
    for value_date, amount in before:
        due = inst(loan, 1)
        pay(loan, due.total_due if amount == "due" else amount, value_date)
    return loan


@pytest.mark.parametrize(("code", "principal", "months", "method", "before", "on"), PAYOFF_CASES,
                         ids=[f"{c[0]}-{c[3]}-{c[5]}" for c in PAYOFF_CASES])
def test_paying_exactly_the_payoff_quote_settles_the_loan(reference, code, principal, months, method, before, on):
    loan = _payoff_setup(code, principal, months, method, before)
    quote = quote_payoff(loan, on)
    parts = quote.principal + quote.interest + quote.penalty + quote.compound + quote.fees + quote.prepayment_fee
    assert quote.total == parts
    assert quote.principal == D(principal) - sum(i.principal_paid for i in live(loan))

    r = pay(loan, quote.total, on, prepay="payoff")
    assert r.settled
    loan.refresh_from_db()
    assert (loan.status, loan.settled_on, loan.dpd, loan.credit_balance) == ("settled", on, 0, D("0.00"))
    status = loan_status(loan)
    assert status["outstanding"]["total"] == "0.00" and status["settled_on"] == on.isoformat()
    assert all(i.status == "paid" for i in live(loan))
    assert all(v == 0 for v in receivables(loan).values())
    assert not JournalEntry.objects.filter(loan=loan, kind="refund").exists()  # exact: nothing to refund
    assert r.payment.credited_amount == 0
    assert_books_ok()


def test_payoff_quote_parts_by_hand_for_a_car_loan_mid_period(reference):
    loan = _payoff_setup("car", "12000", 12, "equal_instalment", [(date(2026, 2, 10), "due")])
    quote = quote_payoff(loan, date(2026, 2, 25))
    balance = D(12000) - inst(loan, 1).principal_due
    assert quote.principal == balance == D("11036.14")
    assert quote.interest == fen(balance * D("0.08") * 15 / 360) == D("36.79")
    assert (quote.penalty, quote.compound, quote.fees, quote.prepayment_fee) == (0, 0, 0, 0)
    assert quote.total == D("11072.93")


def test_payoff_quote_for_an_overdue_mortgage_includes_penalty_and_compound(reference):
    """240,000 over 60, equal principal at 4.2 %: instalment 1 (4,000 + 840 interest) unpaid since 02-10."""
    loan = _payoff_setup("mortgage", "240000", 60, "equal_principal", [])
    q = quote_payoff(loan, date(2026, 3, 20))
    i1 = inst(loan, 1)
    assert (i1.principal_due, i1.interest_due) == (D("4000.00"), D("840.00"))
    # 02-11 … 03-19 = 37 days at 4.2 % × 1.5 / 360
    assert daily_penalty(D(4000), D("4.2"), 37) == D("25.90")
    assert daily_penalty(D(840), D("4.2"), 37) == D("5.44")
    # instalment 2 (due 03-10, 236,000 × 4.2 % / 12 = 826.00 interest) is past grace too: 03-11 … 03-19
    i2 = inst(loan, 2)
    assert (i2.principal_due, i2.interest_due) == (D("4000.00"), D("826.00"))
    assert daily_penalty(D(4000), D("4.2"), 9) == D("6.30") and daily_penalty(D(826), D("4.2"), 9) == D("1.30")
    assert (q.penalty, q.compound) == (D("25.90") + D("6.30"), D("5.44") + D("1.30"))
    # interest: 840 + instalment 2's interest + 10 days (03-10 → 03-20) on the 232,000 still to come
    assert q.interest == D("840.00") + i2.interest_due + fen(D(232000) * D("0.042") * 10 / 360)


# regression: after maturity (nothing in the future) a short payoff used to be posted as a partial payment
@pytest.mark.parametrize(("code", "principal", "months", "method", "before", "on"), PAYOFF_CASES,
                         ids=[f"{c[0]}-{c[3]}-{c[5]}" for c in PAYOFF_CASES])
def test_a_payoff_one_fen_short_is_refused_and_nothing_is_written(reference, code, principal, months, method,
                                                                  before, on):
    loan = _payoff_setup(code, principal, months, method, before)
    quote = quote_payoff(loan, on)
    counts, snap = row_counts(), snapshot()
    with pytest.raises(PaymentError, match="^amount: "):
        pay(loan, quote.total - D("0.01"), on, prepay="payoff")
    assert row_counts() == counts
    assert snapshot() == snap
    loan.refresh_from_db()
    assert loan.status != "settled"


def test_overpaying_a_payoff_leaves_a_refund_and_settles(reference):
    loan = book("car", "12000", 12, START)
    quote = quote_payoff(loan, date(2026, 1, 25))
    pay(loan, quote.total + D("10.00"), date(2026, 1, 25), prepay="payoff")
    loan.refresh_from_db()
    assert (loan.status, loan.settled_on, loan.credit_balance) == ("settled", date(2026, 1, 25), D("0.00"))
    refund = JournalEntry.objects.get(loan=loan, kind="refund")
    assert dict(refund.lines.values_list("account", "amount")) == {"credit_balance": D("10.00"),
                                                                  "refund_payable": D("-10.00")}
    assert_books_ok()


def test_a_settled_loan_takes_no_further_payment(reference):
    loan = book("credit_line", "5000", 3, START)
    pay(loan, quote_payoff(loan, date(2026, 1, 20)).total, date(2026, 1, 20), prepay="payoff")
    before = row_counts()
    with pytest.raises(PaymentError, match="^contract: "):
        pay(loan, "100.00", date(2026, 1, 21))
    assert row_counts() == before


def test_paying_every_instalment_on_time_settles_on_the_last_value_date(reference):
    loan = book("instalment", "3000", 3, START)
    for i in live(loan):
        pay(loan, i.total_due, i.due_date)
    loan.refresh_from_db()
    assert (loan.status, loan.settled_on) == ("settled", date(2026, 4, 10))
    assert_books_ok()


# --------------------------------------------------------------------------- idempotency


def test_the_same_reference_twice_changes_nothing(reference):
    loan = book("car", "12000", 12, START)
    first = pay(loan, "1500.00", date(2026, 2, 10), ref="BANK-20260210-0001")
    assert first.created
    counts, snap, bal = row_counts(), snapshot(), balances(loan)
    again = pay(loan, "1500.00", date(2026, 2, 10), ref="BANK-20260210-0001")
    assert (again.created, again.payment.pk) == (False, first.payment.pk)
    assert row_counts() == counts and snapshot() == snap and balances(loan) == bal
    # a later value date with the same reference is the same payment too: still nothing new
    pay(loan, "1500.00", date(2026, 3, 10), ref="BANK-20260210-0001")
    assert row_counts() == counts and snapshot() == snap


def test_the_same_reference_with_another_amount_or_loan_is_refused(reference):
    loan = book("car", "12000", 12, START)
    other = book("car", "12000", 12, START)
    pay(loan, "1500.00", date(2026, 2, 10), ref="REF-1")
    counts, snap = row_counts(), snapshot()
    with pytest.raises(PaymentError, match="^ref: 'REF-1' was already used"):
        pay(loan, "1500.01", date(2026, 2, 10), ref="REF-1")
    with pytest.raises(PaymentError, match="^ref: "):
        pay(other, "1500.00", date(2026, 2, 10), ref="REF-1")
    assert row_counts() == counts and snapshot() == snap


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"amount": "abc"}, "amount"), ({"amount": "-5"}, "amount"), ({"amount": "0"}, "amount"),
    ({"amount": "1.001"}, "amount"), ({"channel": "cash"}, "channel"), ({"prepay": "all"}, "prepay"),
    ({"ref": " "}, "ref"), ({"value_date": date(2026, 1, 9)}, "value-date"),
])
def test_bad_payment_input_is_refused_naming_the_field(reference, kwargs, field):
    loan = book("car", "12000", 12, START)
    args = {"amount": "100.00", "value_date": date(2026, 2, 10), "ref": "R-1", **kwargs}
    before = row_counts()
    with pytest.raises(PaymentError, match=f"^{field}: "):
        if "ref" in kwargs and not kwargs["ref"].strip():
            from servicing.services.payments import post_payment

            post_payment(loan=loan, amount=args["amount"], channel="counter", value_date=args["value_date"],
                         reference=args["ref"])
        else:
            pay(loan, args.pop("amount"), args.pop("value_date"), **args)
    assert row_counts() == before


# --------------------------------------------------------------------------- property


payment_steps = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=45),                                      # days after the previous
        st.decimals(min_value=D("0.01"), max_value=D("2500"), places=2, allow_nan=False, allow_infinity=False),
        st.sampled_from(["", "", "", "reduce", "shorten", "payoff"]),
        st.booleans(),                                                               # run the business day first
    ),
    min_size=1, max_size=6,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(product=st.sampled_from(["car", "instalment", "credit_line"]), steps=payment_steps)
def test_random_payment_sequences_keep_the_books(reference, product, steps):
    with transaction.atomic():
        loan = book(product, "6000", 12 if product == "car" else 6, START)
        day = START
        for delta, amount, prepay, run_day in steps:
            day += timedelta(days=delta)
            if run_day:
                run_business_day(day)
            before = row_counts()
            try:
                pay(loan, amount, day, prepay=prepay)
            except PaymentError as exc:
                assert str(exc).split(":")[0] in {"amount", "prepay", "contract"}, exc
                assert row_counts() == before
            assert_books_ok()
            paid = Payment.objects.filter(loan=loan).aggregate(s=Sum("amount"))["s"] or 0
            allocated = Allocation.objects.filter(payment__loan=loan).aggregate(s=Sum("amount"))["s"] or 0
            credited = Payment.objects.filter(loan=loan).aggregate(s=Sum("credited_amount"))["s"] or 0
            assert allocated + credited == paid
            loan.refresh_from_db()
            if loan.status == "settled":
                assert loan_status(loan)["outstanding"]["total"] == "0.00"
            assert sum(i.principal_due for i in live(loan)) == D("6000.00")
        transaction.set_rollback(True)
    assert not Loan.objects.filter(pk=loan.pk).exists()


def test_a_back_valued_prepayment_keeps_the_schedule_whole(reference):
    """Found by the random-sequence property with value dates allowed to go back (a transfer posted late):
    the second prepayment used to supersede the first one's paid instalment, losing 0.01 of principal."""
    loan = book("car", "6000", 12, START)
    pay(loan, "1.34", date(2026, 1, 11), prepay="reduce")  # 1.33 interest for one day + 0.01 principal
    try:
        pay(loan, "0.01", date(2026, 1, 10), prepay="reduce")  # value date before the previous payment's
    except PaymentError as exc:  # refusing a value date before the last posting would be fine too
        assert str(exc).startswith("value-date"), exc
    assert sum(i.principal_due for i in live(loan)) == D("6000.00")
    assert_books_ok()


@pytest.mark.django_db(transaction=True)
def test_a_reversal_is_one_transaction_of_its_own(monkeypatch):
    """Called outside any transaction (a task, a command), a reversal locks the loan and applies all or nothing."""
    from servicing.services import audit
    from servicing.services.payments import reverse_payment

    seed_reference_data()
    loan = book("car", "12000", 12, START)
    payment = pay(loan, inst(loan, 1).total_due, date(2026, 2, 10)).payment
    counts = row_counts()

    def audit_fails(*args, **kwargs):
        raise RuntimeError("audit log unavailable")

    with monkeypatch.context() as m:
        m.setattr(audit, "record", audit_fails)
        with pytest.raises(RuntimeError, match="audit log unavailable"):
            reverse_payment(payment, on_date=date(2026, 2, 12), reason="付款行退回")
    assert row_counts() == counts and not Payment.objects.get(pk=payment.pk).reversed  # nothing of it stayed
    assert inst(loan, 1).status == "paid"

    assert reverse_payment(payment, on_date=date(2026, 2, 12), reason="付款行退回")
    assert Payment.objects.get(pk=payment.pk).reversed and inst(loan, 1).status == "overdue"
    assert_books_ok()
