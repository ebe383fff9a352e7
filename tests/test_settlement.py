"""Settlement of many loans at once: the day a cohort's last instalment falls due, one bank result file pays it
off, and every loan is settled with its certificate and its notice, in a number of queries that does not grow
with the cohort."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notices.conf import public_url
from notices.models import Notice, SettlementCertificate
from notices.services.certificates import verify_path
from servicing.models import AuditLog, Loan, Payment
from servicing.services.business_day import bill_due_instalments
from servicing.services.debits.batches import create_debit_batch, export_debit_batch
from servicing.services.debits.results import import_debit_results
from servicing.services.settlement import settle_loans, settlement_blockers
from servicing.services.verify import verify_books

from .test_debits_support import FIRST_DUE, code_for, debits_of, make_loan, ref_data_fixture, result_file  # noqa: F401
from .test_notices_support import notices_settings

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _notices(settings, tmp_path):
    settings.NOTICES = notices_settings(SYNC_TASKS=False)
    settings.MEDIA_ROOT = tmp_path / "media"


def _pay_off_by_file(channel, loans, tmp_path, name="result.txt") -> dict:
    """Loans of one instalment, debited on its due date; the bank answers every debit succeeded."""
    bill_due_instalments(FIRST_DUE)
    batch = create_debit_batch(FIRST_DUE, channel).batch
    export_debit_batch(batch, tmp_path / "debit.txt")
    rows = [(d.reference, d.amount, "succeeded", code_for(channel, "success"), "成功", FIRST_DUE)
            for d in debits_of(batch)]
    assert len(rows) == len(loans)
    return import_debit_results(result_file(channel, rows), channel=channel, name=name)


@pytest.mark.parametrize("inline", [True, False])
def test_a_result_file_paying_off_a_cohort_settles_every_loan_with_certificate_and_notice(
        ref_data, tmp_path, settings, inline):
    # inline: notify() one by one (a few loans); else the bulk COPY of the outbox (more than the threshold)
    settings.REPAYDESK = {**settings.REPAYDESK, "INLINE_RECEIPTS_MAX": 200 if inline else 0}
    channel = ref_data["std"]
    loans = [make_loan(i, channel, months=1, principal="1000", product="credit_line") for i in range(1, 6)]
    summary = _pay_off_by_file(channel, loans, tmp_path)
    assert summary["status"] == "processed" and summary["succeeded"] == len(loans)

    for loan in Loan.objects.filter(pk__in=[x.pk for x in loans]).select_related("borrower"):
        assert (loan.status, loan.settled_on, loan.dpd, loan.credit_balance) == ("settled", FIRST_DUE, 0, Decimal("0"))
        assert settlement_blockers(loan) == []
        (cert,) = SettlementCertificate.objects.filter(loan=loan)
        assert cert.number == f"JQ{FIRST_DUE:%Y%m%d}{loan.pk:08d}" and cert.data["borrower_name"] == loan.borrower.name
        notices = Notice.objects.filter(event="settlement", loan=loan)
        assert sorted(n.channel for n in notices) == ["in_app", "sms"]  # no e-mail address: no e-mail
        paid_at = Payment.objects.get(loan=loan).created_at
        for n in notices:
            assert n.cause_at == paid_at  # the settlement-delay KPI counts from the payment
            assert n.on_date == FIRST_DUE and n.object_id == str(loan.pk)
            assert n.context["certificate_no"] == cert.number
            assert n.context["verify_url"] == public_url(verify_path(cert.verification_code))
            assert n.context["settled_on"] == FIRST_DUE.isoformat()
        (audit,) = AuditLog.objects.filter(action="loan.settled", object_id=str(loan.pk))
        assert audit.data == {"settled_on": FIRST_DUE.isoformat()}
    assert AuditLog.objects.filter(action="certificate.issued").count() == len(loans)
    assert all(r.ok for r in verify_books()), [r.name for r in verify_books() if not r.ok]
    # settling again changes nothing: no second certificate, notice or audit row
    assert settle_loans([x.pk for x in loans]) == []
    assert SettlementCertificate.objects.count() == len(loans)
    assert Notice.objects.filter(event="settlement").count() == 2 * len(loans)


def _paid_off_left_open(channel, loans, tmp_path):
    """A cohort paid off by a file whose settlement did not happen (what the business day's safety net finds)."""
    _pay_off_by_file(channel, loans, tmp_path)
    ids = [x.pk for x in loans]
    Loan.objects.filter(pk__in=ids).update(status="active", settled_on=None)
    SettlementCertificate.objects.filter(loan_id__in=ids).delete()
    Notice.objects.filter(event="settlement", loan_id__in=ids).delete()
    AuditLog.objects.filter(action__in=["loan.settled", "certificate.issued"]).delete()
    return ids


def test_settling_a_cohort_takes_the_same_queries_for_three_loans_as_for_nine(ref_data, tmp_path, settings):
    settings.REPAYDESK = {**settings.REPAYDESK, "INLINE_RECEIPTS_MAX": 0}
    channel = ref_data["std"]
    ids = _paid_off_left_open(channel, [make_loan(i, channel, months=1, principal="1000", product="credit_line") for i in range(1, 13)],
                              tmp_path)
    counts = []
    for part in (ids[:3], ids[3:]):
        with CaptureQueriesContext(connection) as queries:
            assert settle_loans(part) == sorted(part)
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert Loan.objects.filter(pk__in=ids, status="settled").count() == len(ids)
    assert SettlementCertificate.objects.filter(loan_id__in=ids).count() == len(ids)
    assert Notice.objects.filter(event="settlement", loan_id__in=ids).count() == 2 * len(ids)


def test_a_loan_with_something_pending_is_left_open_and_the_rest_settled(ref_data, tmp_path, settings):
    channel = ref_data["std"]
    ids = _paid_off_left_open(channel, [make_loan(i, channel, months=1, principal="1000", product="credit_line") for i in range(1, 4)],
                              tmp_path)
    from servicing.models import ReconciliationException

    blocked = Loan.objects.get(pk=ids[1])
    ReconciliationException.objects.create(loan=blocked, reason_code="amount_mismatch",
                                           reason="amount 1000.00 differs from the debit's")
    assert settle_loans(ids) == [ids[0], ids[2]]
    blocked.refresh_from_db()
    assert blocked.status == "active" and not SettlementCertificate.objects.filter(loan=blocked).exists()
    assert settlement_blockers(blocked) == ["a reconciliation exception is open"]
