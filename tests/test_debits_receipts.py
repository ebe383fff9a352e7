"""The borrowers' receipts of a big result file: the django-q2 task the import enqueued, its blocks of lines on two
connections at once (committed data, so a transactional test database)."""

from __future__ import annotations

import threading

import pytest
from django.db import transaction

from notices.catalog import event_spec
from notices.models import Notice
from notices.services.events import notice_context
from servicing.models import Channel, Debit, ResultFile
from servicing.services import reference_data
from servicing.services.business_day import bill_due_instalments
from servicing.services.debits import bulk_notices
from servicing.services.debits.batches import create_debit_batch, export_debit_batch
from servicing.services.debits.results import import_debit_results

from .test_debits_support import FIRST_DUE, debits_of, make_loan, result_file

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_big_files_receipts_written_on_two_connections_one_per_payment_and_channel_as_notify_words_them(
        tmp_path, settings, monkeypatch):
    settings.MEDIA_ROOT = tmp_path / "media"
    # "big": receipts are the import's follow-up task, and its blocks of 3 lines (the import's chunks) run two at
    # a time
    settings.REPAYDESK = {**settings.REPAYDESK, "INLINE_RECEIPTS_MAX": 0, "IMPORT_WORKERS": 2,
                          "IMPORT_PARALLEL_MIN_ROWS": 0, "IMPORT_CHUNK": 3}
    reference_data.ensure()
    channel = Channel.objects.get(code="std")
    loans = [make_loan(i, channel) for i in range(1, 9)]
    english = loans[1].borrower
    english.language, english.email = "en", "li@example.com"  # English wording, and an e-mail receipt too
    english.save(update_fields=["language", "email"])
    with transaction.atomic():  # as run_business_day runs it
        bill_due_instalments(FIRST_DUE)
    batch = create_debit_batch(FIRST_DUE, channel).batch
    export_debit_batch(batch, tmp_path / "out.csv")
    debits = debits_of(batch)
    rows = [(d.reference, d.amount, "succeeded", "00", "成功", FIRST_DUE) for d in debits]
    rows[4] = (debits[4].reference, debits[4].amount, "failed", "64", "余额不足", None)
    summary = import_debit_results(result_file(channel, rows), channel=channel, name="result.csv")
    assert summary["succeeded"] == len(rows) - 1
    assert not Notice.objects.filter(event="payment_receipt").exists()  # not yet: the task does it

    ran_on = []
    queue_receipts = bulk_notices.queue_receipts

    def spy(ids, **kw):
        ran_on.append(threading.current_thread().name)
        return queue_receipts(ids, **kw)

    monkeypatch.setattr(bulk_notices, "queue_receipts", spy)
    rf = ResultFile.objects.get()
    queued = bulk_notices.queue_file_receipts(rf.pk)
    assert len(ran_on) == 3 and all(name.startswith("chunk-worker-") for name in ran_on)

    spec = event_spec("payment_receipt")
    succeeded = Debit.objects.filter(status="succeeded").select_related("payment", "loan__borrower")
    assert succeeded.count() == len(rows) - 1
    for debit in succeeded:
        payment, loan = debit.payment, debit.loan
        receipts = {n.channel: n for n in Notice.objects.filter(event="payment_receipt", object_id=str(payment.pk))}
        expected = {c for c in spec.channels if c != "email" or loan.borrower.email}
        assert set(receipts) == expected, loan.borrower.name
        want = notice_context(spec, loan, payment, payment.value_date, {})
        for notice in receipts.values():
            assert notice.context == want and notice.language == loan.borrower.language
            assert notice.status == "queued" and notice.loan_id == loan.pk
    assert queued == Notice.objects.filter(event="payment_receipt").count() == 2 * (len(rows) - 1) + 1
    assert "principal" in Notice.objects.filter(event="payment_receipt", loan=loans[1]).first().context["paid_for"]
    assert not Notice.objects.filter(event="payment_receipt", loan=loans[4]).exists()  # its debit failed
    # the task delivered twice (at least once): nothing new
    assert bulk_notices.queue_file_receipts(rf.pk) == 0
    assert Notice.objects.filter(event="payment_receipt").count() == queued
