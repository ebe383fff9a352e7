"""A worker SIGKILLed in the middle of a batch or an import, then re-run: no debit twice, no payment twice or lost.

The commands run as real `manage.py` subprocesses against the test database; REPAYDESK_FAULT makes the
process SIGKILL itself at a chosen point (after the first committed import chunk; inside the batch insert;
after the first committed block of a file's receipts).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from servicing.models import Channel, Debit, DebitBatch, EarlierAnswer, Payment, ResultFile
from servicing.services import reference_data
from servicing.services.debits.batches import export_debit_batch
from servicing.services.verify import verify_books

from .test_debits_support import FIRST_DUE, code_for, debits_of, make_loan, result_file

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(transaction=True)


def _run(args: list[str], tmp_path: Path, **extra) -> subprocess.CompletedProcess:
    s = connection.settings_dict
    url = f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "MEDIA_ROOT": str(tmp_path / "media"), "PYTHONWARNINGS": "ignore",
           **extra}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_killed_batch_then_rerun_builds_it_once(tmp_path):
    reference_data.ensure()
    channel = Channel.objects.get(code="std")
    for i in range(1, 6):
        make_loan(i, channel)
    killed = _run(["create_debit_batch", "--date", FIRST_DUE.isoformat(), "--channel", "std", "--json"], tmp_path,
                  REPAYDESK_FAULT="batch_insert:1")
    assert killed.returncode == -9
    assert not DebitBatch.objects.exists() and not Debit.objects.exists()  # the transaction died with it
    again = _run(["create_debit_batch", "--date", FIRST_DUE.isoformat(), "--channel", "std", "--json"], tmp_path)
    assert again.returncode == 0, again.stderr
    third = _run(["create_debit_batch", "--date", FIRST_DUE.isoformat(), "--channel", "std", "--json"], tmp_path)
    assert '"created": false' in third.stdout
    assert DebitBatch.objects.count() == 1 and Debit.objects.count() == 5


def test_batch_built_in_chunks_on_two_threads_killed_then_rerun_builds_each_debit_once(tmp_path):
    """A big batch: chunks of loan ids built two at a time, each thread on its own connection. Killed inside a
    chunk's insert, the batch stays `building` with the chunks done so far; the re-run builds only the rest."""
    reference_data.ensure()
    channel = Channel.objects.get(code="std")
    loans = [make_loan(i, channel) for i in range(1, 8)]
    chunks = {"REPAYDESK_DEBIT_CHUNK": "2", "REPAYDESK_DEBIT_WORKERS": "2"}
    args = ["create_debit_batch", "--date", FIRST_DUE.isoformat(), "--channel", "std", "--json"]
    killed = _run(args, tmp_path, REPAYDESK_FAULT="batch_insert:3", **chunks)
    assert killed.returncode == -9, killed.stderr
    batch = DebitBatch.objects.get()
    assert batch.status == "building" and Debit.objects.count() < len(loans)
    assert len(batch.stats["done"]) < batch.stats["chunks"] and batch.stats["chunks"] > 2
    again = _run(args, tmp_path, **chunks)
    assert again.returncode == 0, again.stderr
    batch.refresh_from_db()
    assert batch.status != "building"
    assert sorted(Debit.objects.values_list("loan_id", flat=True)) == sorted(loan.pk for loan in loans)
    assert '"created": false' in _run(args, tmp_path, **chunks).stdout


@pytest.mark.parametrize("workers", ["1", "2"])  # chunks one after the other; two threads applying chunks at once
def test_killed_import_then_rerun_posts_each_payment_once(tmp_path, settings, workers):
    settings.MEDIA_ROOT = tmp_path / "media"
    reference_data.ensure()
    channel = Channel.objects.get(code="std")
    for i in range(1, 11):
        make_loan(i, channel)
    from servicing.services.debits.batches import create_debit_batch

    batch = create_debit_batch(FIRST_DUE, channel).batch
    export_debit_batch(batch, tmp_path / "out.csv")
    debits = debits_of(batch)
    rows = [(d.reference, d.amount, "succeeded", "00", "成功", FIRST_DUE) if n % 3 else
            (d.reference, d.amount, "failed", "64", "余额不足", None) for n, d in enumerate(debits)]
    # in the first chunk, a debit the bank still has in hand: it stays unknown, so the re-run meets it again
    rows[0] = (debits[0].reference, debits[0].amount, "unknown", code_for(channel, "unknown"), "处理中", None)
    path = tmp_path / "result.csv"
    path.write_bytes(result_file(channel, rows))
    n_success = sum(1 for r in rows if r[2] == "succeeded")

    chunks = {"REPAYDESK_IMPORT_CHUNK": "4", "REPAYDESK_IMPORT_WORKERS": workers,
              "REPAYDESK_IMPORT_PARALLEL_MIN_ROWS": "0"}
    killed = _run(["import_debit_results", str(path), "--channel", "std", "--json"], tmp_path,
                  REPAYDESK_FAULT="import_chunk:1", **chunks)
    assert killed.returncode == -9, killed.stderr
    partial = Payment.objects.count()
    # the first chunk committed, the last did not happen (with two threads, the second may have committed too)
    assert 0 < partial < n_success
    assert ResultFile.objects.get().status == "processing"

    rerun = _run(["import_debit_results", str(path), "--channel", "std", "--json"], tmp_path, **chunks)
    assert rerun.returncode == 0, rerun.stderr
    assert '"status": "processed"' in rerun.stdout and f'"succeeded": {n_success}' in rerun.stdout
    assert Payment.objects.count() == n_success
    for d in Debit.objects.filter(status="succeeded"):
        assert Payment.objects.filter(reference=d.reference).count() == 1
    assert Debit.objects.filter(status="failed").count() == len(rows) - n_success - 1
    unknown = Debit.objects.get(status="unknown")
    # its answer is on it, from its line; the re-run of that line kept no copy of it as an earlier answer
    assert unknown.pk == debits[0].pk and unknown.result_line == 2 and not EarlierAnswer.objects.exists()
    assert Debit.objects.filter(result_file=ResultFile.objects.get()).count() == len(rows)
    once_more = _run(["import_debit_results", str(path), "--channel", "std", "--json"], tmp_path)
    assert '"status": "already_imported"' in once_more.stdout
    assert Payment.objects.count() == n_success
    assert all(r.ok for r in verify_books()), [(r.name, r.examples) for r in verify_books() if not r.ok]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_receipts_task_killed_then_rerun_sends_each_receipt_once(tmp_path, settings, workers):
    """The receipts of a big file (the import's follow-up django-q2 task) in blocks of 3 lines: the worker is
    killed after its first block committed; the task delivered again writes the rest, none twice."""
    from django.db import transaction

    from notices.catalog import event_spec
    from notices.models import Notice
    from servicing.services.business_day import bill_due_instalments
    from servicing.services.debits.batches import create_debit_batch
    from servicing.services.debits.results import import_debit_results

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.REPAYDESK = {**settings.REPAYDESK, "INLINE_RECEIPTS_MAX": 0}  # the import leaves them to the task
    reference_data.ensure()
    channel = Channel.objects.get(code="std")
    for i in range(1, 11):
        make_loan(i, channel)
    with transaction.atomic():  # billed: the payments take the set-based path, whose receipts are the task's
        bill_due_instalments(FIRST_DUE)
    batch = create_debit_batch(FIRST_DUE, channel).batch
    export_debit_batch(batch, tmp_path / "out.csv")
    rows = [(d.reference, d.amount, "succeeded", "00", "成功", FIRST_DUE) for d in debits_of(batch)]
    import_debit_results(result_file(channel, rows), channel=channel, name="result.csv")
    assert not Notice.objects.filter(event="payment_receipt").exists()

    task = ("from servicing.services.debits.bulk_notices import queue_file_receipts; "
            f"print(queue_file_receipts({ResultFile.objects.get().pk}))")
    blocks = {"REPAYDESK_IMPORT_CHUNK": "3", "REPAYDESK_IMPORT_WORKERS": workers,
              "REPAYDESK_IMPORT_PARALLEL_MIN_ROWS": "0"}
    killed = _run(["shell", "-c", task], tmp_path, REPAYDESK_FAULT="receipts_block:1", **blocks)
    assert killed.returncode == -9, killed.stderr
    channels = len(event_spec("payment_receipt").channels) - 1  # no e-mail address here
    written = Notice.objects.filter(event="payment_receipt").count()
    assert 0 < written < channels * len(rows)  # the first block is in, the last is not

    again = _run(["shell", "-c", task], tmp_path, **blocks)
    assert again.returncode == 0, again.stderr
    assert int(again.stdout.split()[-1]) == channels * len(rows) - written  # only what was missing
    for payment in Payment.objects.all():
        receipts = Notice.objects.filter(event="payment_receipt", object_id=str(payment.pk))
        assert receipts.count() == channels and receipts.values("channel").distinct().count() == channels
