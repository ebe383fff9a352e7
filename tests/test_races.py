"""Races on real connections: two payments for one loan at the same moment, the same reference posted twice
at once, a payment racing the business day. Each thread has its own database connection and commits."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from servicing.models import Allocation, JournalEntry, Loan, Payment
from servicing.services.business_day import run_business_day
from servicing.services.payments import post_payment
from servicing.services.verify import verify_books
from tests.factories import annuity, assert_books_ok, book, inst, live, seed_reference_data

D = Decimal
pytestmark = pytest.mark.django_db(transaction=True)
START = date(2026, 1, 10)


@pytest.fixture
def reference(transactional_db):
    return seed_reference_data()


def race(*jobs):
    """Run each job in its own thread (own connection), released together by a barrier. Returns results or
    the exception each raised, in order."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def worker(i, job):
        try:
            barrier.wait(timeout=30)
            results[i] = job()
        except Exception as exc:  # noqa: BLE001 - reported back to the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread is stuck (deadlock?)"
    return results


def _post(loan_id: int, amount, ref: str, value_date=date(2026, 2, 10)):
    return lambda: post_payment(loan=Loan.objects.get(pk=loan_id), amount=str(amount), channel="counter",
                                value_date=value_date, reference=ref)


def test_two_payments_racing_for_one_loan_are_both_applied_once(reference):
    loan = book("car", "12000", 12, START)
    a = annuity(D(12000), D("8"), 12)  # 1,043.86: each payment alone would pay instalment 1 in full
    results = race(_post(loan.pk, a, "RACE-A"), _post(loan.pk, a, "RACE-B"))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert all(r.created for r in results)

    assert Payment.objects.filter(loan=loan).count() == 2
    assert JournalEntry.objects.filter(loan=loan, kind="payment").count() == 2
    i1 = inst(loan, 1)
    # instalment 1 paid exactly once: one payment paid it, the other became credit balance
    assert (i1.status, i1.principal_paid, i1.interest_paid) == ("paid", i1.principal_due, i1.interest_due)
    assert Allocation.objects.filter(instalment=i1).aggregate(s=Sum("amount"))["s"] == a
    loan.refresh_from_db()
    assert loan.credit_balance == a
    credited = sorted(p.credited_amount for p in Payment.objects.filter(loan=loan))
    assert credited == [D("0.00"), a]
    assert all(i.total_paid == 0 for i in live(loan)[1:])
    assert_books_ok()


def test_many_payments_racing_keep_the_books(reference):
    loan = book("instalment", "6000", 12, START)  # 536.00 a month
    results = race(*[_post(loan.pk, "300.00", f"MANY-{n}", date(2026, 3, 10)) for n in range(4)])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert Payment.objects.filter(loan=loan).count() == 4
    paid = Allocation.objects.filter(payment__loan=loan).aggregate(s=Sum("amount"))["s"]
    loan.refresh_from_db()
    assert paid + loan.credit_balance == D("1200.00")
    i1 = inst(loan, 1)
    assert i1.status == "paid" and inst(loan, 2).status == "paid"  # 2 × 536 = 1,072 due by 03-10
    # instalment 1 is 27 days late on 03-10 (02-11 … 03-09): 500 × 0.6 % × 12 × 1.5 × 27 / 360 = 4.05
    assert i1.penalty_accrued == D("4.05")
    assert loan.credit_balance == D("1200.00") - D("1072.00") - D("4.05")
    assert_books_ok()


def test_the_same_reference_posted_twice_at_once_is_one_payment(reference):
    loan = book("car", "12000", 12, START)
    results = race(_post(loan.pk, "1500.00", "DUP-1"), _post(loan.pk, "1500.00", "DUP-1"))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(r.created for r in results) == [False, True]
    assert results[0].payment.pk == results[1].payment.pk
    assert Payment.objects.filter(reference="DUP-1").count() == 1
    assert JournalEntry.objects.filter(idempotency_key="payment:DUP-1").count() == 1
    assert JournalEntry.objects.filter(loan=loan, kind="payment").count() == 1
    loan.refresh_from_db()
    assert loan.credit_balance == D("1500.00") - annuity(D(12000), D("8"), 12)
    assert_books_ok()


def test_the_same_reference_for_two_loans_at_once_is_one_payment(reference):
    one, two = book("car", "12000", 12, START), book("car", "12000", 12, START)
    results = race(_post(one.pk, "1500.00", "DUP-2"), _post(two.pk, "1500.00", "DUP-2"))
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and str(errors[0]).startswith("ref: "), results
    assert Payment.objects.filter(reference="DUP-2").count() == 1
    assert JournalEntry.objects.filter(kind="payment").count() == 1
    assert_books_ok()




def test_a_payment_racing_the_business_day_is_applied_once_and_penalty_charged_once(reference):
    """The business day accrues penalty for 03-01 while payments valued 03-02 bring the same loans to 03-01
    (same accrual idempotency keys, same instalment rows)."""
    loans = [book("car", "12000", 12, START) for _ in range(5)]
    run_business_day(date(2026, 2, 10))
    jobs = [lambda: run_business_day(date(2026, 3, 1))]
    jobs += [_post(loan.pk, "500.00", f"BD-{n}", date(2026, 3, 2)) for n, loan in enumerate(loans)]
    results = race(*jobs)
    failures = [str(r).splitlines()[0] for r in results if isinstance(r, Exception)]
    penalties = [inst(loan, 1).penalty_accrued for loan in loans]
    # 02-11 … 03-01: 19 days on the unpaid principal, charged once whichever ran first
    expected = (inst(loans[0], 1).principal_due * D("0.12") * 19 / 360).quantize(D("0.01"))
    broken = [r.name for r in verify_books() if not r.ok]
    assert (failures, penalties, broken) == ([], [expected] * len(loans), [])


def test_a_payment_while_the_batch_is_exported_leaves_the_debit_sent_to_the_bank_as_sent(transactional_db, tmp_path,
                                                                                         monkeypatch):
    """A borrower pays at the counter while the debit batch is being exported: the payment's hook (which cancels a
    planned debit that nothing is left for) must not cancel a debit that is in the file. Every debit in the file
    is then submitted in the book, for the file's amount (the bank's success becomes a credit balance)."""
    import csv
    import time

    from servicing.models import Channel, Debit
    from servicing.services import reference_data
    from servicing.services.debits import batches
    from tests.test_debits_support import FIRST_DUE, make_loan

    reference_data.ensure()
    channel = Channel.objects.get(code="std")
    loans = [make_loan(i, channel) for i in range(1, 4)]
    batch = batches.create_debit_batch(FIRST_DUE, channel).batch
    payer = Debit.objects.get(loan=loans[1])
    read = threading.Event()
    copy_out = batches._copy_out

    def copy_out_then_pause(*args, **kwargs):
        copy_out(*args, **kwargs)
        read.set()  # the file's rows are read; the payment comes now, before the export commits
        time.sleep(1.5)

    monkeypatch.setattr(batches, "_copy_out", copy_out_then_pause)

    def pay():
        assert read.wait(timeout=60)
        return post_payment(loan=Loan.objects.get(pk=payer.loan_id), amount=str(payer.amount), channel="counter",
                            value_date=FIRST_DUE, reference="CTR-DURING-EXPORT")

    exported, paid = race(lambda: batches.export_debit_batch(batch, tmp_path / "out.csv"), pay)
    assert not isinstance(exported, Exception), exported
    assert not isinstance(paid, Exception), paid
    assert paid.created and exported["count"] == 3
    with open(tmp_path / "out.csv", encoding="utf-8-sig", newline="") as fh:
        sent = {row["reference"]: Decimal(row["amount"]) for row in csv.DictReader(fh)}
    assert payer.reference in sent
    for reference, amount in sent.items():
        debit = Debit.objects.get(reference=reference)
        assert (debit.status, debit.amount) == ("submitted", amount), reference
    assert_books_ok()


def test_payments_racing_an_incident_waiver_pay_or_waive_each_penalty_once(reference):
    """Ops approve an incident's bulk waiver while the borrowers pay at the counter: each instalment's penalty is
    either paid or waived, never both (the waiver reads what is owed after taking the loans' locks)."""
    from django.contrib.auth import get_user_model

    from servicing.models import IncidentLoan
    from servicing.services.debits.incidents import approve_waiver, open_incident, request_waiver
    from tests.factories import channel

    loans = [book("car", "12000", 12, START) for _ in range(4)]
    run_business_day(date(2026, 3, 1))  # instalment 1 (due 02-10) overdue: penalty charged
    penalties = [(inst(loan, 1).penalty_accrued, inst(loan, 1).compound_accrued) for loan in loans]
    assert all(p > 0 for p, _ in penalties)
    User = get_user_model()
    ops, boss = User.objects.create(username="ops"), User.objects.create(username="boss")
    incident = open_incident(channel=channel("std"), window_start=date(2026, 2, 10), title="outage found late",
                             user=ops, loans=loans)
    request_waiver(incident, user=ops)

    jobs = [lambda: approve_waiver(incident, user=boss, on_date=date(2026, 3, 1))]
    jobs += [_post(loan.pk, "1500.00", f"WV-{n}", date(2026, 3, 1)) for n, loan in enumerate(loans)]
    results = race(*jobs)
    assert not [r for r in results if isinstance(r, Exception)], results
    waived_total = results[0]
    waived = dict(IncidentLoan.objects.filter(incident=incident).values_list("loan_id", "waived_amount"))
    for loan, (penalty, compound) in zip(loans, penalties, strict=True):
        i1 = inst(loan, 1)
        # 1,500 pays instalment 1 whole with its penalty and compound interest when it comes first; else the waiver
        # took them and the payment the rest
        assert i1.status == "paid" and (i1.penalty_accrued, i1.compound_accrued) == (penalty, compound)
        assert (i1.penalty_paid + i1.penalty_waived, i1.compound_paid + i1.compound_waived) == (penalty, compound)
        assert i1.penalty_waived + i1.compound_waived == waived[loan.pk]
        assert JournalEntry.objects.filter(loan=loan, kind="waiver").count() == (1 if waived[loan.pk] else 0)
    assert waived_total == sum(waived.values(), D("0"))
    assert_books_ok()
