"""Shared fixtures for the self-service tests (unit and browser): borrowers with logins, loans with a
history, a failed debit with its retry state, a settled loan with a certificate, a complaint.

Loans and payments go through the servicing services; debits, certificates and complaints through the
owning app's services where they exist (see `failed_debit`, `settle_with_certificate`, `complaint_for`).
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from servicing.models import Channel, Loan, Mandate
from servicing.services.mandates import activate_mandate, sign_mandate
from tests.factories import BorrowerFactory, book, pay, seed_reference_data

PASSWORD = "Portal-pass-2026"
TODAY = date(2026, 5, 20)  # the portal's "today" in these tests: instalments due 10 Feb … 10 May
_n = itertools.count(1)


@pytest.fixture
def reference(db):
    """Calendar 2025–2027, the four products and the bank channels."""
    from servicing.services.calendar import calendar_cache_clear

    yield seed_reference_data()
    calendar_cache_clear()


def borrower_with_login(password: str = PASSWORD):
    borrower = BorrowerFactory()
    user = get_user_model().objects.create_user(username=borrower.phone, password=password,
                                                first_name=borrower.name)
    borrower.user = user
    borrower.save(update_fields=["user"])
    return borrower


def loan_with_mandate(borrower, *, product="car", principal="12000.00", months=12, start=date(2026, 1, 10)) -> Loan:
    loan = book(product, principal, months, start, borrower=borrower)
    mandate = sign_mandate(loan=loan, channel=Channel.objects.get(code="std"),
                           account_no=f"62220212{next(_n):08d}", account_name=borrower.name, bank_code="ICBC")
    activate_mandate(mandate)
    return loan


def pay_instalments(loan: Loan, n: int) -> None:
    """Pay the first n instalments on their due dates."""
    for inst in list(loan.instalments.exclude(status="superseded").order_by("seq"))[:n]:
        inst.refresh_from_db()
        pay(loan, inst.total_outstanding, inst.due_date)


def failed_debit(loan: Loan, *, category: str = "insufficient_funds", code: str = "64", retry_on: date | None = None,
                 retry_status: str = "scheduled"):
    """A debit of the oldest unpaid instalment that the bank refused, with the pipeline's retry state."""
    from servicing.models import Debit, DebitBatch, RetryState

    inst = loan.instalments.exclude(status__in=["superseded", "paid"]).order_by("seq").first()
    mandate = Mandate.objects.get(loan=loan, status="active")
    batch, _ = DebitBatch.objects.get_or_create(
        channel=mandate.channel, business_date=inst.due_date,
        defaults={"reference": f"B{inst.due_date:%Y%m%d}-{mandate.channel.code}-{next(_n)}"})
    debit = Debit.objects.create(
        reference=f"D{next(_n):010d}", batch=batch, loan=loan, mandate=mandate, instalment=inst,
        due_date=inst.due_date, attempt=0, amount=inst.total_outstanding, status="failed", category=category,
        result_code=code, result_message="余额不足", result_status="FAILED", result_on=inst.due_date)
    RetryState.objects.create(
        instalment=inst, loan=loan, first_failed_on=inst.due_date, failures=1, retries_used=0,
        next_retry_on=retry_on, status=retry_status if retry_on else "stopped", last_category=category,
        last_debit=debit)
    return debit


def planned_debit(loan: Loan, due: date):
    from servicing.models import Debit, DebitBatch

    inst = loan.instalments.filter(due_date=due).exclude(status="superseded").first()
    mandate = Mandate.objects.get(loan=loan, status="active")
    batch, _ = DebitBatch.objects.get_or_create(
        channel=mandate.channel, business_date=due,
        defaults={"reference": f"B{due:%Y%m%d}-{mandate.channel.code}-{next(_n)}"})
    return Debit.objects.create(reference=f"D{next(_n):010d}", batch=batch, loan=loan, mandate=mandate,
                                instalment=inst, due_date=due, attempt=0, amount=inst.total_outstanding)


def settle_with_certificate(loan: Loan, on: date):
    """Pay the loan off through the core; the notices app issues the certificate on settlement."""
    from servicing.selectors import quote_payoff

    quote = quote_payoff(loan, on)
    pay(loan, quote.total, on, prepay="payoff")
    loan.refresh_from_db()
    assert loan.status == "settled", loan.status
    from notices.models import SettlementCertificate

    return SettlementCertificate.objects.filter(loan=loan).exclude(status="superseded").first()


def complaint_for(loan: Loan, *, subject: str = "扣款问题", on: date = TODAY):
    """Through collections' own service, as staff would record it from a call."""
    from collections_app.services.complaints import file_complaint

    return file_complaint(loan=loan, subject=subject, description="同一期被扣了两次款，请核实。", on_date=on,
                          source="portal")


def many_payments(loan: Loan, n: int, start: date) -> None:
    """n small payments (each allocated) to grow the borrower's history."""
    for i in range(n):
        pay(loan, Decimal("10.00"), start + timedelta(days=i))
