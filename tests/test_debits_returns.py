"""A late bank return (退回) of a debit we had posted as succeeded: the payment is undone, the borrower owes
again and is told, the books stay balanced, and only ops/supervisors may do it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from servicing import roles
from servicing.models import Debit, EarlierAnswer, Instalment, JournalEntry, Payment, ReconciliationException
from servicing.models.ledger import EntryKind
from servicing.services import payments
from servicing.services.business_day import run_business_day
from servicing.services.debits.batches import create_debit_batch, export_debit_batch
from servicing.services.debits.resolution import ResolutionError, resolve_unknown_debit, return_debit
from servicing.services.debits.results import import_debit_results
from servicing.services.verify import verify_books

from .test_debits_support import (  # noqa: F401
    FIRST_DUE,
    debits_of,
    make_loan,
    notices_fixture,
    ref_data_fixture,
    result_file,
)

pytestmark = pytest.mark.django_db


def _debited(ref_data, tmp_path, i=1, answer=("succeeded", "00", "成功", FIRST_DUE)):
    """A loan debited on its first due date, the bank's file answering with `answer` (status, code, message,
    settled on)."""
    channel = ref_data["std"]
    loan = make_loan(i, channel)
    batch = create_debit_batch(FIRST_DUE, channel).batch
    export_debit_batch(batch, tmp_path / f"out{i}.csv")
    debit = next(d for d in debits_of(batch) if d.loan_id == loan.pk)
    import_debit_results(result_file(channel, [(debit.reference, debit.amount, *answer)]), channel=channel)
    debit.refresh_from_db()
    assert debit.status == answer[0] and bool(debit.payment_id) == (answer[0] == "succeeded")
    return channel, loan, debit


def test_staff_resolve_an_unknown_debit_and_its_unknown_answer_is_kept(ref_data, notices, tmp_path, settings):
    """The bank answered a query by phone: staff record it; the debit is posted, the file's "unknown" kept."""
    settings.MEDIA_ROOT = tmp_path / "media"
    _, loan, debit = _debited(ref_data, tmp_path, answer=("unknown", "04", "处理中", None))
    with pytest.raises(ResolutionError, match="category"):
        resolve_unknown_debit(debit, outcome="failed", category="no_such", on_date=FIRST_DUE)
    on = FIRST_DUE + timedelta(days=2)
    resolve_unknown_debit(debit, outcome="succeeded", on_date=on, note="银行电话确认已扣款")

    debit.refresh_from_db()
    assert (debit.status, debit.result_action, debit.result_message, debit.result_on, debit.result_file) == (
        "succeeded", "resolved by staff", "银行电话确认已扣款", on, None)
    assert debit.payment.value_date == on and Instalment.objects.get(loan=loan, seq=1).status == "paid"
    (earlier,) = debit.earlier_answers.all()
    assert (earlier.outcome, earlier.raw_code, earlier.action, earlier.line_no) == ("unknown", "04", "await result", 2)
    with pytest.raises(ResolutionError, match="not unknown"):  # once
        resolve_unknown_debit(debit, outcome="succeeded", on_date=on, note="again")
    assert EarlierAnswer.objects.count() == 1
    assert all(r.ok for r in verify_books()), [(r.name, r.examples) for r in verify_books() if not r.ok]


def test_bank_return_undoes_the_payment_and_tells_the_borrower(ref_data, notices, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    channel, loan, debit = _debited(ref_data, tmp_path)
    first = Instalment.objects.get(loan=loan, seq=1)
    assert first.status == "paid"
    # the bank's next file says the debit failed after all: a contradiction for a person, nothing applied
    later = result_file(channel, [(debit.reference, debit.amount, "failed", "51", "资金退回", None)])
    import_debit_results(later, channel=channel, name="later.csv")
    exc = ReconciliationException.objects.get(debit=debit)
    assert exc.status == "open" and Debit.objects.get(pk=debit.pk).status == "succeeded"

    on = FIRST_DUE + timedelta(days=5)
    return_debit(debit, on_date=on, reason="付款行退回：账户冻结")

    debit.refresh_from_db()
    first.refresh_from_db()
    loan.refresh_from_db()
    payment = Payment.objects.get(pk=debit.payment_id)
    assert debit.status == "returned" and payment.reversed
    assert first.status == "overdue" and first.total_paid == Decimal("0") and first.paid_on is None
    assert loan.status == "overdue" and loan.dpd == 5
    reversal = JournalEntry.objects.get(kind=EntryKind.REVERSAL, reverses=payment.entry)
    assert sorted(line.amount for line in reversal.lines.all()) == sorted(
        -line.amount for line in payment.entry.lines.all())
    # the return is the debit's answer now; the bank's success it replaced is kept as it was
    assert (debit.category, debit.result_action, debit.result_on) == ("returned", "payment reversed; borrower told to pay", on)
    (earlier,) = EarlierAnswer.objects.filter(debit=debit)
    assert (earlier.outcome, earlier.category, earlier.action) == ("succeeded", "success", "posted as paid")
    assert ReconciliationException.objects.get(pk=exc.pk).status == "resolved"
    told = [ctx for event, lid, obj, ctx in notices.calls if event == "debit_failed" and obj == debit]
    assert len(told) == 1 and "退回" in told[0]["reason"]
    assert all(r.ok for r in verify_books()), [(r.name, r.examples) for r in verify_books() if not r.ok]

    # it happens once; the borrower now owes penalty for the days the money was not really paid
    with pytest.raises(ResolutionError):
        return_debit(debit, on_date=on, reason="again")
    run_business_day(FIRST_DUE + timedelta(days=10))
    first.refresh_from_db()
    assert first.penalty_accrued > 0
    assert all(r.ok for r in verify_books())


def test_return_of_a_closed_loan_or_a_prepayment_needs_a_person(ref_data, notices, tmp_path):
    from servicing.selectors import quote_payoff

    _, loan, debit = _debited(ref_data, tmp_path)
    quote = quote_payoff(loan, FIRST_DUE + timedelta(days=2))
    payoff = payments.post_payment(loan=loan, amount=quote.total, channel="transfer",
                                   value_date=FIRST_DUE + timedelta(days=2), reference="PAYOFF-1", prepay="payoff")
    assert payoff.settled
    with pytest.raises(payments.PaymentError, match="needs a person"):
        return_debit(debit, on_date=FIRST_DUE + timedelta(days=3), reason="退回")
    assert Debit.objects.get(pk=debit.pk).status == "succeeded"
    assert not Payment.objects.get(pk=debit.payment_id).reversed
    with pytest.raises(payments.PaymentError, match="reason"):
        payments.reverse_payment(payoff.payment, on_date=FIRST_DUE, reason=" ")


def test_only_ops_and_supervisors_may_return_a_debit_in_the_admin(ref_data, notices, tmp_path, client, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    _, loan, debit = _debited(ref_data, tmp_path)
    roles.ensure_roles()
    url = f"/admin/servicing/debit/{debit.pk}/return/"
    users = {}
    for role in (roles.OPERATIONS, roles.AUDITOR):
        user = get_user_model().objects.create_user(f"{role}-u", password="x-Secret-123", is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        users[role] = user

    client.force_login(users[roles.AUDITOR])
    assert client.get(url).status_code == 403
    assert client.post(url, {"on_date": "2026-12-03", "reason": "退回"}).status_code == 403

    client.force_login(users[roles.OPERATIONS])
    page = client.get(f"/admin/servicing/debit/{debit.pk}/change/").content.decode()
    assert url in page  # the change page offers it for a succeeded debit
    r = client.post(url, {"on_date": "2026-12-03", "reason": ""})
    assert r.status_code == 200 and Debit.objects.get(pk=debit.pk).status == "succeeded"  # reason required
    r = client.post(url, {"on_date": "2026-12-03", "reason": "付款行退回"})
    assert r.status_code == 302
    assert Debit.objects.get(pk=debit.pk).status == "returned"
    from servicing.models import AuditLog

    log = AuditLog.objects.filter(action="debit.returned").get()
    assert log.actor == users[roles.OPERATIONS] and "付款行退回" in log.reason
