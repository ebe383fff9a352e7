"""The set-based posting of a result file's payments (posting.py) writes what the per-loan service writes.

Twin loans (same product, principal and dates) are brought to the same state; one payment goes through
`post_payment`, the same amount through `post_succeeded_debits`; the waterfall, the instalments, the payment,
its journal lines and the loan must come out the same, to the fen.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection

from servicing.models import Instalment, JournalEntry, LoanProduct, Payment
from servicing.models.ledger import EntryKind
from servicing.services.business_day import run_business_day
from servicing.services.debits.posting import post_succeeded_debits
from servicing.services.payments import payment_legs, post_payment, reverse_payment
from tests.factories import assert_books_ok, book, inst, seed_reference_data

pytestmark = pytest.mark.django_db

START = date(2026, 1, 10)  # instalments fall due on the 10th
ON_TIME = [date(2026, 2, 10)]
LATE = [date(2026, 2, 10), date(2026, 3, 10), date(2026, 3, 31)]  # two instalments overdue, penalty accrued


def _post_set_based(rows: list[tuple[int, Decimal, date, str]]) -> dict:
    """Post (loan id, amount, value date, reference) rows through the set-based path, as a chunk of a file."""
    with connection.cursor() as cur:
        cur.execute("CREATE TEMP TABLE _succeeded (debit_id bigint, loan_id bigint, amount numeric, value_date date, "
                    "reference text) ON COMMIT DROP")
        for n, (loan_id, amount, value_date, reference) in enumerate(rows, start=1):
            cur.execute("INSERT INTO _succeeded VALUES (%s, %s, %s, %s, %s)",
                        [-n, loan_id, amount, value_date, reference])
    out = post_succeeded_debits("_succeeded", audit_on=("servicing.resultfile", 1), audit_data={"lines": "1-3"})
    with connection.cursor() as cur:
        cur.execute("DROP TABLE _succeeded")
    return out


@pytest.mark.parametrize(("product", "order", "days", "value_date", "amount"), [
    ("car", None, ON_TIME, date(2026, 2, 10), "instalment"),  # exactly the instalment, on its due date
    ("car", None, ON_TIME, date(2026, 2, 10), "30.00"),  # less than its interest
    ("car", None, ON_TIME, date(2026, 2, 10), "1500.00"),  # more than is due: the rest is credit balance
    ("car", None, LATE, date(2026, 4, 1), "1300.00"),  # the oldest in full with its penalty, part of the next
    ("car", None, LATE, date(2026, 4, 1), "5000.00"),  # everything overdue, and more
    ("car", "principal,interest,fee,compound,penalty", LATE, date(2026, 4, 1), "1300.00"),  # another order
])
def test_set_based_posting_writes_what_the_payment_service_writes(product, order, days, value_date, amount):
    seed_reference_data()
    if order:
        LoanProduct.objects.filter(code=product).update(allocation_order=order)
    service_loan, bulk_loan = book(product, "12000", 12, START), book(product, "12000", 12, START)
    for d in days:
        run_business_day(d)
    if amount == "instalment":
        amount = str(inst(service_loan, 1).total_outstanding)
    amount = Decimal(amount)

    by_service = post_payment(loan=service_loan, amount=amount, channel="bank", value_date=value_date,
                              reference="SVC-1", note="auto-debit").payment
    out = _post_set_based([(bulk_loan.pk, amount, value_date, "BULK-1")])
    assert out["fast"] == 1 and out["slow"] == 0  # the set-based path did post it
    by_bulk = Payment.objects.get(reference="BULK-1")

    def waterfall(payment):
        return sorted((a.instalment.seq, c, amount) for a in payment.allocations.select_related("instalment")
                      for c, amount in a.parts().items())

    def instalments(loan):
        return list(Instalment.objects.filter(loan=loan).exclude(status="superseded").order_by("seq").values_list(
            "seq", "status", "paid_on", "principal_paid", "interest_paid", "fee_paid", "penalty_paid", "compound_paid",
            "penalty_accrued", "compound_accrued"))

    def lines(payment):
        return sorted(payment.entry.lines.values_list("account", "amount"))

    def figures(payment):
        payment.loan.refresh_from_db()
        return (payment.amount, payment.applied_amount, payment.credited_amount, payment.value_date,
                payment.loan.status, payment.loan.dpd, payment.loan.credit_balance)

    assert waterfall(by_service), "the service allocated nothing: not a useful comparison"
    assert waterfall(by_bulk) == waterfall(by_service)
    assert instalments(bulk_loan) == instalments(service_loan)
    assert lines(by_bulk) == lines(by_service)
    assert figures(by_bulk) == figures(by_service)
    assert_books_ok()


def test_a_chunks_payments_share_one_bank_entry_per_value_date_and_a_return_reverses_only_its_own():
    """批量入账: one entry per value date for a chunk's payments; the bank's money is one clearing line, each loan's
    lines beneath it. Reversing one payment (a bank return) mirrors that payment's part and nothing of the others."""
    seed_reference_data()
    first, second, other_day = (book("car", "12000", 12, START) for _ in range(3))
    run_business_day(date(2026, 2, 10))
    run_business_day(date(2026, 2, 11))
    due = inst(first, 1).total_outstanding
    out = _post_set_based([(first.pk, due, date(2026, 2, 10), "BULK-A"), (second.pk, due + 100, date(2026, 2, 10),
                                                                          "BULK-B"),
                           (other_day.pk, due, date(2026, 2, 11), "BULK-C")])
    assert out["fast"] == 3 and out["slow"] == 0
    a, b, c = (Payment.objects.select_related("entry").get(reference=r) for r in ("BULK-A", "BULK-B", "BULK-C"))
    assert a.entry_id == b.entry_id != c.entry_id  # one entry per value date
    shared = a.entry
    assert shared.loan_id is None and shared.kind == "payment" and shared.value_date == date(2026, 2, 10)
    assert shared.idempotency_key == "bank_payments:BULK-A" and "2 payments" in shared.memo
    clearing = list(shared.lines.filter(account="clearing_bank").values_list("loan_id", "amount"))
    assert clearing == [(None, a.amount + b.amount)]  # what the bank paid in, in one line
    legs = {p.reference: sorted((leg.account, leg.amount) for leg in payment_legs(p)) for p in (a, b)}
    assert legs["BULK-A"] == sorted([("clearing_bank", due), *(
        (f"{component}_receivable", -amount) for component, amount in _parts(a).items())])
    assert ("credit_balance", Decimal("-100.00")) in legs["BULK-B"]  # the part beyond what was due
    assert all(sum(amount for _, amount in lg) == 0 for lg in legs.values())  # each payment's part balances
    assert_books_ok()

    b_instalment = inst(second, 1).status
    assert reverse_payment(a, on_date=date(2026, 2, 12), reason="付款行退回")
    reversal = JournalEntry.objects.get(kind=EntryKind.REVERSAL, idempotency_key=f"reversal:payment:{a.pk}")
    assert sorted(reversal.lines.values_list("account", "amount")) == sorted(
        (account, -amount) for account, amount in legs["BULK-A"])
    assert {line.loan_id for line in reversal.lines.all()} == {first.pk}
    assert inst(first, 1).status == "overdue" and inst(second, 1).status == b_instalment == "paid"
    assert Payment.objects.filter(reversed=True).count() == 1
    assert not reverse_payment(Payment.objects.get(pk=a.pk), on_date=date(2026, 2, 12), reason="again")  # once
    assert_books_ok()


def _parts(payment: Payment) -> dict[str, Decimal]:
    parts: dict[str, Decimal] = {}
    for allocation in payment.allocations.all():
        for component, amount in allocation.parts().items():
            parts[component] = parts.get(component, Decimal("0")) + amount
    return parts


@pytest.mark.parametrize(("days", "value_date", "fast"), [
    ([], date(2026, 2, 10), False),  # instalment 1 due by the value date but not billed: billing comes first
    (LATE, date(2026, 4, 15), False),  # overdue, penalty accrued to 31 March only: penalty to accrue first
    (ON_TIME, date(2026, 2, 10), True),  # billed on its due date, nothing pending: set-based
])
def test_a_debit_whose_loan_must_be_brought_to_the_value_date_is_left_to_the_payment_service(days, value_date, fast):
    seed_reference_data()
    loan = book("car", "12000", 12, START)
    for d in days:
        run_business_day(d)
    out = _post_set_based([(loan.pk, Decimal("100.00"), value_date, "BULK-1"),
                           (loan.pk, Decimal("50.00"), value_date, "BULK-2")])
    assert out["fast"] == int(fast)
    # one of the loan's two debits at most: an instalment is paid once per chunk (the other goes the per-loan way)
    assert Payment.objects.filter(loan=loan, reference__startswith="BULK-").count() == int(fast)
    assert_books_ok()
