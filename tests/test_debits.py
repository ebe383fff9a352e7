"""The auto-debit pipeline end to end: batch, export, result import, failure actions, books."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from servicing.models import (
    AuditLog,
    Debit,
    DebitBatch,
    DebitSkip,
    EarlierAnswer,
    Instalment,
    Payment,
    ReconciliationException,
    ResultFile,
    RetryState,
)
from servicing.services.business_day import bill_due_instalments, run_business_day
from servicing.services.debits.batches import create_debit_batch, export_debit_batch
from servicing.services.debits.results import import_debit_results
from servicing.services.verify import verify_books

from .test_debits_support import (  # noqa: F401
    FIRST_DUE,
    code_for,
    debits_of,
    make_loan,
    notices_fixture,
    ref_data_fixture,
    result_file,
)

pytestmark = pytest.mark.django_db

STD_CATEGORIES = ["success", "debited_not_posted", "insufficient_funds", "limit_daily_monthly", "limit_single",
                  "account_state", "identity_mismatch", "mandate_invalid", "card_invalid", "unknown",
                  "channel_down", "technical", "unclassified"]
GB_CATEGORIES = ["success", "insufficient_funds", "limit_daily_monthly", "limit_single", "account_state",
                 "identity_mismatch", "mandate_invalid", "unknown", "channel_down", "unclassified"]


def books_ok():
    bad = [r for r in verify_books() if not r.ok]
    assert not bad, [(r.name, r.examples) for r in bad]


def _rows_for(channel, debits, categories):
    rows = []
    for debit, cat in zip(debits, categories, strict=True):
        if cat == "success":
            rows.append((debit.reference, debit.amount, "succeeded", code_for(channel, "success"), "成功", FIRST_DUE))
        elif cat == "debited_not_posted":
            rows.append((debit.reference, debit.amount, "succeeded", code_for(channel, cat), "扣款成功销账未知",
                         FIRST_DUE))
        elif cat == "unknown":
            rows.append((debit.reference, debit.amount, "unknown", code_for(channel, cat), "处理中", None))
        elif cat == "unclassified":
            rows.append((debit.reference, debit.amount, "failed", "ZZ", "其他错误", None))
        else:
            rows.append((debit.reference, debit.amount, "failed", code_for(channel, cat), "失败", None))
    return rows


@pytest.mark.parametrize(("code", "categories", "bill_first", "bulk"), [
    ("std", STD_CATEGORIES, True, False),
    ("std", STD_CATEGORIES, True, True),  # the notices of a big import: one COPY per chunk, not notify() each
    ("example-gb18030", GB_CATEGORIES, False, False),
])
def test_end_to_end_every_category(ref_data, notices, tmp_path, settings, code, categories, bill_first, bulk,
                                   django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path / "media"
    if bulk:
        settings.REPAYDESK = {**settings.REPAYDESK, "INLINE_RECEIPTS_MAX": 0}
        notices.include_outbox = True
    channel = ref_data[code]
    loans = [make_loan(i, channel) for i in range(1, len(categories) + 1)]
    if bill_first:
        bill_due_instalments(FIRST_DUE)  # instalments billed: succeeded rows take the set-based path

    result = create_debit_batch(FIRST_DUE, channel)
    assert result.created and result.count == len(loans)
    assert create_debit_batch(FIRST_DUE, channel).batch.pk == result.batch.pk  # same date+channel: same batch
    out = tmp_path / "debit.txt"
    exported = export_debit_batch(result.batch, out)
    layout = channel.profile["debit_file"]
    raw = out.read_bytes()
    text = raw.decode(layout["encoding"])
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) == len(loans) + 2  # header + one line per debit, no extra lines
    assert lines[0] == layout["delimiter"].join(c["header"] for c in layout["columns"])
    if code == "example-gb18030":
        assert "付款户名" in text and raw.startswith("交易流水号".encode("gb18030"))
        assert "20261201" in lines[1]
    batch = DebitBatch.objects.get(pk=result.batch.pk)
    assert batch.status == "exported" and batch.control_count == len(loans)
    assert exported["amount"] == f"{batch.control_amount:.2f}"
    debits = debits_of(batch)
    assert {d.status for d in debits} == {"submitted"}

    content = result_file(channel, _rows_for(channel, debits, categories))
    with django_capture_on_commit_callbacks(execute=True):  # receipts go out after each chunk commits
        summary = import_debit_results(content, channel=channel, name="result.txt")
    if bulk:  # the receipts are the django-q2 task the import enqueued: run it as a worker would
        from servicing.models import ResultFile
        from servicing.services.debits.bulk_notices import queue_file_receipts

        assert queue_file_receipts(ResultFile.objects.get(sha256__isnull=False).pk) > 0
    assert summary["status"] == "processed", summary
    assert summary["rows"] == len(loans) and summary["exceptions"] == 0
    n_success = sum(1 for c in categories if c in ("success", "debited_not_posted"))
    assert summary["succeeded"] == n_success
    assert summary["unknown"] == 1
    assert summary["unmapped_codes"] == ["ZZ"]
    assert summary["failed"]["unclassified"] == 1
    for cat in categories:
        if cat not in ("success", "debited_not_posted", "unknown"):
            assert summary["failed"][cat] == 1, cat
    assert summary["control_total_ok"] is True
    if bill_first:  # the set-based payments of a chunk are audited once, on the file and its lines
        (audit,) = AuditLog.objects.filter(action="payments.posted")
        assert audit.object_type == "servicing.resultfile" and audit.data["lines"] == f"1-{len(loans) + 1}"
        assert int(audit.data["payments"]) == n_success and audit.data["amount"] == summary["succeeded_amount"]

    by_cat = {cat: Debit.objects.get(pk=d.pk) for d, cat in zip(debits, categories, strict=True)}
    for cat, debit in by_cat.items():
        # the bank's answer is kept on the debit as it came, with the action taken and the file line
        assert debit.result_code and debit.result_action and debit.result_status and debit.result_on
        assert debit.result_file.sha256 and debit.result_line > 1 and not debit.earlier_answers.exists()
        loan = debit.loan
        first = Instalment.objects.get(loan=loan, seq=1)
        if cat in ("success", "debited_not_posted"):
            assert debit.status == "succeeded" and debit.payment is not None
            assert debit.payment.channel == "bank" and debit.payment.reference == debit.reference
            assert first.status == "paid"
            assert "payment_receipt" in notices.events(loan)
        elif cat == "unknown":
            assert debit.status == "unknown" and first.status != "paid"
            assert not notices.events(loan, "debit_failed")
        else:
            assert debit.status == "failed" and debit.category == cat and first.status != "paid"

    d1 = FIRST_DUE + timedelta(days=1)
    rs = RetryState.objects.get(instalment__loan=by_cat["insufficient_funds"].loan)
    assert rs.status == "scheduled" and rs.next_retry_on == d1
    assert by_cat["insufficient_funds"].result_action == f"retry on {d1}"
    assert notices.events(by_cat["insufficient_funds"].loan) == ["debit_failed"]
    from notices.catalog import event_spec
    from notices.models import Notice

    if bulk:  # written by the bulk path: every channel, the full context notify() would write
        failed_notices = Notice.objects.filter(event="debit_failed", loan=by_cat["insufficient_funds"].loan)
        assert {n.channel for n in failed_notices} == set(event_spec("debit_failed").channels) - {"email"}
        for n in failed_notices:
            assert set(n.context) == set(event_spec("debit_failed").all_variables)
            assert d1.isoformat() in n.context["next_step"] and n.context["reason"]
            assert n.context["contract_no"] == by_cat["insufficient_funds"].loan.masked_contract_no
            assert n.status == "queued" and n.dedupe_key.startswith("debit_failed:")
    else:
        (context,) = [c for e, lid, _, c in notices.calls
                      if e == "debit_failed" and lid == by_cat["insufficient_funds"].loan_id]
        assert d1.isoformat() in context["next_step"] and context["reason"] == "扣款账户余额不足"
    assert RetryState.objects.get(instalment__loan=by_cat["limit_daily_monthly"].loan).next_retry_on == d1
    assert RetryState.objects.get(instalment__loan=by_cat["channel_down"].loan).status == "scheduled"
    for cat in ("limit_single", "unclassified"):
        assert RetryState.objects.get(instalment__loan=by_cat[cat].loan).status == "stopped"
        assert notices.events(by_cat[cat].loan) == ["debit_failed"]
    for cat in ("account_state", "identity_mismatch"):  # suspended with who and why
        m = by_cat[cat].loan.mandates.get()
        assert (m.status, m.suspend_reason) == ("suspended", f"debit {by_cat[cat].reference}: {cat}")
        assert AuditLog.objects.filter(action="mandate.suspended", object_id=str(m.pk), reason=m.suspend_reason,
                                       actor_label="system").count() == 1
    m = by_cat["mandate_invalid"].loan.mandates.get()
    assert m.status == "cancelled" and m.cancel_cause == "bank"
    assert "mandate_cancelled" in notices.events(by_cat["mandate_invalid"].loan)
    if "technical" in by_cat:
        assert not notices.events(by_cat["technical"].loan, "debit_failed")
        assert by_cat["technical"].loan.mandates.get().status == "active"
        (alert,) = AuditLog.objects.filter(action="debit.technical_alert")  # ops are told which debit and why
        assert (alert.object_id, alert.reason) == (str(by_cat["technical"].pk), "category technical")
    if "card_invalid" in by_cat:
        assert by_cat["card_invalid"].loan.mandates.get().status == "cancelled"
    books_ok()

    # the next day: retries due (insufficient funds, daily limit) are debited; unknown blocks; no second batch
    nxt = create_debit_batch(d1, channel)
    retried = {d.loan_id: d for d in debits_of(nxt.batch)}
    assert by_cat["insufficient_funds"].loan_id in retried
    assert retried[by_cat["insufficient_funds"].loan_id].kind == "retry"
    assert retried[by_cat["insufficient_funds"].loan_id].attempt == 1
    assert by_cat["limit_daily_monthly"].loan_id in retried
    assert by_cat["unknown"].loan_id not in retried
    for cat in ("limit_single", "account_state", "mandate_invalid", "success"):
        assert by_cat[cat].loan_id not in retried
    books_ok()


def test_a_file_answering_another_channels_debit_is_rejected_whole(ref_data, notices, tmp_path, settings):
    """A reference of a debit sent through another channel: the file is not this channel's (exit 3), and none of
    its rows is applied, the good ones included."""
    settings.MEDIA_ROOT = tmp_path / "media"
    std, gb = ref_data["std"], ref_data["example-gb18030"]
    make_loan(1, std)
    make_loan(2, std)
    make_loan(3, gb)
    ours, theirs = create_debit_batch(FIRST_DUE, std).batch, create_debit_batch(FIRST_DUE, gb).batch
    for batch in (ours, theirs):
        export_debit_batch(batch, tmp_path / f"out-{batch.pk}.csv")
    rows = _rows_for(std, [*debits_of(ours), *debits_of(theirs)], ["success", "success", "success"])
    path = tmp_path / "mixed.csv"
    path.write_bytes(result_file(std, rows))
    with pytest.raises(CommandError) as exc:
        call_command("import_debit_results", str(path), "--channel", "std")
    other = debits_of(theirs)[0].reference
    assert exc.value.returncode == 3
    assert f"line 4: reference {other} is a debit of channel example-gb18030, not std" in str(exc.value)
    assert not Payment.objects.exists() and not ReconciliationException.objects.exists()
    assert {d.status for d in Debit.objects.all()} == {"submitted"}
    assert ResultFile.objects.get().status == "rejected"


def test_same_file_twice_and_rejections(ref_data, notices, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    channel = ref_data["std"]
    loans = [make_loan(i, channel) for i in range(1, 4)]
    batch = create_debit_batch(FIRST_DUE, channel).batch
    export_debit_batch(batch, tmp_path / "out.csv")
    debits = debits_of(batch)
    rows = _rows_for(channel, debits, ["success", "insufficient_funds", "success"])
    path = tmp_path / "res.csv"
    path.write_bytes(result_file(channel, rows))

    # a wrong header: rejected (exit 3), nothing applied, the file kept
    bad_header = tmp_path / "bad_header.csv"
    bad_header.write_bytes(result_file(channel, rows, header=["ref", "amount", "status", "code", "message",
                                                                "settled_on", "channel_txn_id"]))
    with pytest.raises(CommandError) as exc:
        call_command("import_debit_results", str(bad_header), "--channel", "std", "--json")
    assert exc.value.returncode == 3 and "header" in str(exc.value)
    # undecodable bytes: rejected with the line
    undecodable = tmp_path / "bad_bytes.csv"
    undecodable.write_bytes(path.read_bytes() + b"D1,\xff\xfe,SUCCESS,00,x,,\r\n")
    with pytest.raises(CommandError) as exc:
        call_command("import_debit_results", str(undecodable), "--channel", "std")
    assert exc.value.returncode == 3 and "line 5" in str(exc.value)
    # a GB18030 file given to the std channel is refused too (wrong channel / wrong header)
    assert not Payment.objects.exists()
    assert {d.status for d in Debit.objects.all()} == {"submitted"}
    rejected = ResultFile.objects.filter(status="rejected")
    assert rejected.count() == 2 and all(Path(r.path).exists() for r in rejected)
    assert not ReconciliationException.objects.exists()

    first = import_debit_results(path, channel=channel)
    assert first["status"] == "processed" and first["succeeded"] == 2
    state = (Payment.objects.count(), EarlierAnswer.objects.count(), ReconciliationException.objects.count(),
             len(notices.calls), list(Debit.objects.values_list("status", "result_file", "result_line", "updated_at")))
    again = import_debit_results(path, channel=channel)
    assert again["status"] == "already_imported"
    assert (Payment.objects.count(), EarlierAnswer.objects.count(), ReconciliationException.objects.count(),
            len(notices.calls), list(Debit.objects.values_list("status", "result_file", "result_line", "updated_at"))
            ) == state
    # the file is kept once, whichever copy or name it comes back under (the kept copy itself, an upload)
    kept = Path(ResultFile.objects.get(status="processed").path)
    assert import_debit_results(kept, channel=channel)["status"] == "already_imported"
    assert import_debit_results(path.read_bytes(), channel=channel, name="again.csv")["status"] == "already_imported"
    assert sorted(kept.parent.glob(kept.name.split("_")[0] + "_*")) == [kept]
    assert loans
    books_ok()


def test_bad_rows_become_exceptions_good_rows_apply(ref_data, notices, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    channel = ref_data["std"]
    for i in range(1, 6):
        make_loan(i, channel)
    batch = create_debit_batch(FIRST_DUE, channel).batch
    export_debit_batch(batch, tmp_path / "out.csv")
    d = debits_of(batch)
    ok = code_for(channel, "success")
    rows = [
        (d[0].reference, d[0].amount, "succeeded", ok, "ok", FIRST_DUE),                      # line 2: good
        (d[1].reference, d[1].amount + Decimal("1.00"), "succeeded", ok, "ok", FIRST_DUE),  # line 3: amount mismatch
        ("D20261201-999999999", Decimal("10.00"), "succeeded", ok, "ok", FIRST_DUE),        # line 4: unknown ref
        (d[2].reference, d[2].amount, "succeeded", ok, "ok", FIRST_DUE),                      # line 5: good
        (d[2].reference, d[2].amount, "failed", "64", "余额不足", None),                       # line 6: duplicate
        (d[3].reference, "abc", "succeeded", ok, "ok", FIRST_DUE),                             # line 7: garbage
        (d[4].reference, d[4].amount, "failed", "64", "余额不足", None),                       # line 8: good
    ]
    summary = import_debit_results(result_file(channel, rows), channel=channel)
    assert summary["status"] == "processed"
    assert summary["rows"] == 7 and summary["exceptions"] == 4 and summary["succeeded"] == 2
    assert summary["failed"]["insufficient_funds"] == 1
    assert summary["control_total_ok"] is False
    exc = {e.line_no: e for e in ReconciliationException.objects.all()}
    assert set(exc) == {3, 4, 6, 7}
    assert exc[3].reason_code == "amount_mismatch" and "differs" in exc[3].reason
    assert exc[4].reason_code == "unknown_reference"
    assert exc[6].reason_code == "duplicate_reference" and "line 5" in exc[6].reason
    assert exc[7].reason_code == "bad_amount" and "'abc'" in exc[7].reason
    assert exc[7].raw_text.startswith(d[3].reference)
    assert "line 7: amount 'abc' is not a number" in summary["errors"]
    statuses = {x.pk: x.status for x in Debit.objects.all()}
    assert statuses[d[0].pk] == "succeeded" and statuses[d[2].pk] == "succeeded" and statuses[d[4].pk] == "failed"
    assert statuses[d[1].pk] == "submitted" and statuses[d[3].pk] == "submitted"
    # a loan with an open exception is not settled while it stands (settlement blocker)
    from servicing.services.settlement import settlement_blockers

    assert "a reconciliation exception is open" in settlement_blockers(d[1].loan)
    books_ok()


@pytest.mark.parametrize(("code", "settled", "value_date"), [
    ("std", "2026-12-02", date(2026, 12, 2)),          # the bank's settlement date is the payment's value date
    ("std", "2026-02-30", FIRST_DUE),                  # no such day: the batch's date
    ("std", "2026-13-01", FIRST_DUE),
    ("std", "２０２６-12-02", FIRST_DUE),              # full-width digits are not a date of this format
    ("std", "", FIRST_DUE),
    ("example-gb18030", "20261202", date(2026, 12, 2)),
    ("example-gb18030", "2026-12-02", FIRST_DUE),      # another format than the profile's
])
def test_settlement_date_read_with_the_profile_format(ref_data, notices, tmp_path, settings, code, settled,
                                                      value_date):
    settings.MEDIA_ROOT = tmp_path / "media"
    channel = ref_data[code]
    make_loan(1, channel)
    bill_due_instalments(FIRST_DUE)
    batch = create_debit_batch(FIRST_DUE, channel).batch
    export_debit_batch(batch, tmp_path / "out.txt")
    (debit,) = debits_of(batch)
    rows = [(debit.reference, debit.amount, "succeeded", code_for(channel, "success"), "ok", settled)]
    summary = import_debit_results(result_file(channel, rows), channel=channel)
    assert summary["succeeded"] == 1 and summary["exceptions"] == 0
    debit.refresh_from_db()
    assert debit.payment.value_date == value_date
    assert debit.settled_on == (value_date if value_date != FIRST_DUE else None)


def test_unknown_blocks_until_resolved_and_debited_not_posted_is_paid(ref_data, notices, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    channel = ref_data["std"]
    unknown_loan = make_loan(1, channel)
    dnp_loan = make_loan(2, channel)
    batch = create_debit_batch(FIRST_DUE, channel).batch
    export_debit_batch(batch, tmp_path / "o.csv")
    d = {x.loan_id: x for x in debits_of(batch)}
    rows = [(d[unknown_loan.pk].reference, d[unknown_loan.pk].amount, "failed", "99", "状态未明", None),
            (d[dnp_loan.pk].reference, d[dnp_loan.pk].amount, "succeeded", "74", "扣款成功销账未知", FIRST_DUE)]
    summary = import_debit_results(result_file(channel, rows), channel=channel)
    assert summary["unknown"] == 1 and summary["succeeded"] == 1 and summary["failed"]["unclassified"] == 0
    assert Debit.objects.get(pk=d[unknown_loan.pk].pk).status == "unknown"  # FAILED + unknown code: never failed
    assert Instalment.objects.get(loan=dnp_loan, seq=1).status == "paid"
    # days pass; later instalments fall due; the unknown loan is never debited again, with the reason recorded
    day = FIRST_DUE
    for _ in range(40):
        day += timedelta(days=1)
        create_debit_batch(day, channel)
        run_business_day(day)
    assert Debit.objects.filter(loan=unknown_loan).count() == 1
    assert DebitSkip.objects.filter(loan=unknown_loan, reason="unknown_pending").exists()
    assert ReconciliationException.objects.filter(debit=d[unknown_loan.pk], reason_code="unknown_unresolved").count() == 1
    assert not unknown_loan.missed_debits.exists()
    # the next result file says it succeeded: now it is paid and the loan can be debited again
    later = [(d[unknown_loan.pk].reference, d[unknown_loan.pk].amount, "succeeded", "00", "成功", FIRST_DUE)]
    s2 = import_debit_results(result_file(channel, later), channel=channel)
    assert s2["succeeded"] == 1 and s2["exceptions"] == 0
    answered = Debit.objects.get(pk=d[unknown_loan.pk].pk)
    assert (answered.status, answered.result_code, answered.result_file.summary["succeeded"]) == ("succeeded", "00", 1)
    # the "unknown" it replaced is kept as the bank gave it, with its file line
    (earlier,) = answered.earlier_answers.all()
    assert (earlier.outcome, earlier.raw_code, earlier.raw_message, earlier.action, earlier.line_no) == (
        "unknown", "99", "状态未明", "await result", 2)
    assert earlier.result_file_id != answered.result_file_id
    nxt = day + timedelta(days=1)
    create_debit_batch(nxt, channel)
    assert Debit.objects.filter(loan=unknown_loan).count() == 2
    books_ok()


@pytest.mark.parametrize("bulk", [False, True])  # True: the borrowers are told through one COPY (many missed)
def test_sweep_finds_debit_that_never_happened(ref_data, notices, tmp_path, settings, bulk):
    from notices.models import Notice
    from servicing.models import MissedDebitException
    from servicing.services.mandates import cancel_mandate

    if bulk:
        settings.REPAYDESK = {**settings.REPAYDESK, "INLINE_RECEIPTS_MAX": 0}
        notices.include_outbox = True
    channel = ref_data["std"]
    debited = make_loan(1, channel)
    cancelled = make_loan(2, channel)
    self_pay = make_loan(3, channel, mandate=False)
    cancel_mandate(cancelled.mandates.get(), cause="borrower", reason="self-service", user=None)
    create_debit_batch(FIRST_DUE, channel)
    stats = run_business_day(FIRST_DUE)["steps"]["debits"]
    assert stats["missed"] == 2
    missed = {m.loan_id: m for m in MissedDebitException.objects.all()}
    assert missed[cancelled.pk].reason == "mandate_cancelled"
    assert missed[self_pay.pk].reason == "no_mandate"
    assert debited.pk not in missed
    assert notices.events(cancelled, "debit_missed") == ["debit_missed"]
    if bulk:
        (ctx, *_) = Notice.objects.filter(event="debit_missed", loan=cancelled).values_list("context", flat=True)
        assert ctx["contract_no"] == cancelled.masked_contract_no
    else:
        ctx = [c for e, lid, _, c in notices.calls if e == "debit_missed" and lid == cancelled.pk][0]
    assert ctx["amount"] and ctx["pay_by"] and ctx["reason"]
    # re-running the day changes nothing and tells nobody twice
    run_business_day(FIRST_DUE)
    assert MissedDebitException.objects.count() == 2 and len(notices.events(event="debit_missed")) == 2


@contextmanager
def explained(picks):
    """The plans (EXPLAIN) of the statements `picks(sql)` chooses, taken as they run, in their transaction."""
    from django.db import connection

    plans: list[str] = []
    inside: list[bool] = []  # the EXPLAIN itself goes through the wrapper too

    def wrapper(execute, sql, params, many, context):
        if not inside and picks(sql):
            inside.append(True)
            try:
                with connection.cursor() as cur:
                    cur.execute("EXPLAIN " + sql, params)
                    plans.append("\n".join(r[0] for r in cur.fetchall()))
            finally:
                inside.clear()
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield plans


def test_sweep_reads_the_open_and_due_instalments_by_index(ref_data, notices):
    """At 1M loans the planner expected millions of open instalments due by the date (most that fell due are
    paid) and read every instalment of the book, 2.5 s of each run; the sweep reads them by index."""
    from django.db import connection

    from servicing.services.debits.business_day import sweep

    channel = ref_data["std"]
    for i in range(3):
        make_loan(i, channel, mandate=i != 0)
    with connection.cursor() as cur:
        # with statistics, a test book's few instalments are cheapest to read whole, as a big book's were by the
        # planner's estimate: the plan must still go by the open-and-due index
        cur.execute("ANALYZE servicing_instalment")
    with explained(lambda sql: sql.lstrip().startswith("CREATE TEMP TABLE _sweep")) as plans:
        stats = sweep(FIRST_DUE)
    assert stats["due_or_overdue"] == 3 and stats["missed"] == 3  # nothing was batched: all three are missed
    assert plans and "servicing_instalment" in plans[0], "the sweep's statement was not seen"
    assert "Seq Scan on servicing_instalment" not in plans[0], plans[0]


@pytest.mark.django_db(transaction=True)
def test_sweep_called_on_its_own_is_one_transaction(notices):
    """The demo and the business day call it outside any transaction: its staging table must outlive a statement."""
    from servicing.models import Channel
    from servicing.services import reference_data
    from servicing.services.debits.business_day import sweep

    reference_data.ensure()
    make_loan(1, Channel.objects.get(code="std"), mandate=False)
    assert sweep(FIRST_DUE)["missed"] == 1
    assert notices.events(event="debit_missed") == ["debit_missed"]


@pytest.mark.parametrize("bulk", [False, True])
def test_pre_due_check_lists_loans_that_will_not_be_debited(ref_data, notices, settings, bulk):
    from notices.models import Notice
    from servicing.models import PreDueWarning
    from servicing.services.mandates import suspend_mandate

    channel = ref_data["std"]
    settings.REPAYDESK = {**settings.REPAYDESK, "PRE_DUE_DAYS": 3, **({"INLINE_RECEIPTS_MAX": 0} if bulk else {})}
    notices.include_outbox = bulk
    fine = make_loan(1, channel)
    suspended = make_loan(2, channel)
    suspend_mandate(suspended.mandates.get(), reason="frozen")
    none = make_loan(3, channel, mandate=False)
    limited = make_loan(4, channel, single_limit=Decimal("500.00"))
    run_business_day(FIRST_DUE - timedelta(days=3))
    reasons = {w.loan_id: w.reason for w in PreDueWarning.objects.all()}
    assert reasons == {suspended.pk: "mandate_suspended", none.pk: "no_active_mandate",
                       limited.pk: "above_single_limit"}
    assert fine.pk not in reasons
    assert notices.events(limited, "pre_debit_reminder") == ["pre_debit_reminder"]
    if bulk:  # the warning names the mandate's account and how to fix it
        (ctx, *_) = Notice.objects.filter(event="pre_debit_reminder", loan=limited,
                                          object_type="servicing.preduewarning").values_list("context", flat=True)
        assert ctx["account"] == limited.mandates.get().masked_account
        assert "本期将无法自动扣款" in ctx["debit_line"] and "代扣单笔限额" in ctx["debit_line"]  # as notify() builds it
    # on the due date the over-limit loan is not debited (not split) and the reason is recorded
    create_debit_batch(FIRST_DUE, channel)
    assert not Debit.objects.filter(loan=limited).exists()
    assert DebitSkip.objects.get(loan=limited, business_date=FIRST_DUE).reason == "above_single_limit"


def test_active_payment_cancels_planned_debit_and_mandate_cancel_drops_unsent(ref_data, notices):
    from servicing.services.mandates import cancel_mandate
    from servicing.services.payments import post_payment

    channel = ref_data["std"]
    paid = make_loan(1, channel)
    dropped = make_loan(2, channel)
    batch = create_debit_batch(FIRST_DUE, channel).batch
    debit = Debit.objects.get(batch=batch, loan=paid)
    post_payment(loan=paid, amount=debit.amount, channel="counter", value_date=FIRST_DUE, reference="CTR-1")
    assert Debit.objects.get(pk=debit.pk).status == "cancelled"
    cancel_mandate(dropped.mandates.get(), cause="borrower", reason="changed bank")
    assert Debit.objects.get(batch=batch, loan=dropped).status == "cancelled"
    books_ok()


def test_bank_profile_command_round_trip(ref_data, tmp_path, capsys):
    import json

    call_command("bank_profile", "export", "example-gb18030")
    profile = json.loads(capsys.readouterr().out)
    profile["code"] = "newbank"
    profile["result_file"]["amount_unit"] = "fen"
    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile, ensure_ascii=False), encoding="utf-8")
    call_command("bank_profile", "import", str(path))
    assert "newbank" in capsys.readouterr().out
    profile["result_file"]["codes"]["X"] = "no_such_category"
    path.write_text(json.dumps(profile, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(CommandError) as exc:
        call_command("bank_profile", "import", str(path))
    assert exc.value.returncode == 3 and "no_such_category" in str(exc.value)


def test_first_batch_reads_debits_by_index_when_statistics_say_the_table_is_empty(ref_data, notices):
    """After a deploy, servicing_debit is vacuumed empty and its statistics say so; the batch inserts into it
    while it looks up each candidate's previous attempt, so a seq scan there reads every row inserted so far,
    once per candidate (a 1M-loan first batch ran for minutes in one chunk)."""
    from django.db import connection

    channel = ref_data["std"]
    for i in range(3):
        make_loan(i, channel)
    bill_due_instalments(FIRST_DUE)
    with connection.cursor() as cur:  # what VACUUM of the empty table leaves behind (rolled back with the test)
        cur.execute("UPDATE pg_class SET relpages = 0, reltuples = 0 WHERE oid = 'servicing_debit'::regclass")
    with explained(lambda sql: sql.lstrip().startswith("INSERT INTO servicing_debit ")
                   or "FROM servicing_debit" in sql) as plans:
        result = create_debit_batch(FIRST_DUE, channel)
    assert result.count == 3
    assert plans, "the batch's statements on servicing_debit were not seen"
    scans = [p for p in plans if "Seq Scan on servicing_debit" in p]
    assert not scans, scans[0]


def test_a_debit_keeps_its_batch_mandate_and_instalment(ref_data, notices):
    """A debit's references are checked per statement (servicing.references), not by foreign keys: what it
    points to still cannot be deleted from under it."""
    from django.db import IntegrityError, connection, transaction

    channel = ref_data["std"]
    make_loan(1, channel)
    bill_due_instalments(FIRST_DUE)
    batch = create_debit_batch(FIRST_DUE, channel).batch
    debit = Debit.objects.get(batch=batch)
    for table, key in [("servicing_debitbatch", batch.pk), ("servicing_mandate", debit.mandate_id),
                       ("servicing_instalment", debit.instalment_id)]:
        with pytest.raises(IntegrityError, match=f"delete on table \"{table}\" .* is still referenced"), \
                transaction.atomic(), connection.cursor() as cur:
            cur.execute(f"DELETE FROM {table} WHERE id = %s", [key])
    with pytest.raises(IntegrityError, match="violates reference servicing_debit.mandate_id"), \
            transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE servicing_debit SET mandate_id = -1 WHERE id = %s", [debit.pk])


def test_an_answered_debit_keeps_its_payment_and_result_file(ref_data, notices, tmp_path, settings):
    """A debit's payment and answering file are set by UPDATE on every debit a bank file answers, and checked per
    statement (servicing.references.answer_sql), not by foreign keys: a missing one is refused on update and on
    insert, and what they point to cannot be deleted from under the debit."""
    from django.db import IntegrityError, connection, transaction

    settings.MEDIA_ROOT = tmp_path / "media"
    channel = ref_data["std"]
    make_loan(1, channel)
    bill_due_instalments(FIRST_DUE)
    batch = create_debit_batch(FIRST_DUE, channel).batch
    export_debit_batch(batch, tmp_path / "out.csv")
    debit = Debit.objects.get(batch=batch)
    data = result_file(channel, [(debit.reference, debit.amount, "succeeded", code_for(channel, "success"), "ok",
                                  FIRST_DUE)])
    assert import_debit_results(data, channel=channel)["succeeded"] == 1
    debit.refresh_from_db()
    assert debit.payment_id and debit.result_file_id
    for table, key in [("servicing_payment", debit.payment_id), ("servicing_resultfile", debit.result_file_id)]:
        with pytest.raises(IntegrityError, match=f"delete on table \"{table}\" .* is still referenced"), \
                transaction.atomic(), connection.cursor() as cur:
            cur.execute(f"DELETE FROM {table} WHERE id = %s", [key])
    for column in ("payment_id", "result_file_id"):
        with pytest.raises(IntegrityError, match=f"update on table \"servicing_debit\" violates reference "
                                                 f"servicing_debit.{column} .*=\\(-1\\) is not present"), \
                transaction.atomic(), connection.cursor() as cur:
            cur.execute(f"UPDATE servicing_debit SET {column} = -1 WHERE id = %s", [debit.pk])
    with pytest.raises(IntegrityError, match="insert on table \"servicing_debit\" violates reference "
                                             "servicing_debit.result_file_id"), \
            transaction.atomic(), connection.cursor() as cur:
        cur.execute("""INSERT INTO servicing_debit (reference, batch_id, loan_id, mandate_id, instalment_id, due_date,
                                                    attempt, kind, amount, status, category, result_code,
                                                    result_message, channel_txn_id, created_at, updated_at,
                                                    result_file_id)
                       SELECT reference || 'X', batch_id, loan_id, mandate_id, instalment_id, due_date, attempt + 1,
                              kind, amount, 'failed', category, result_code, result_message, channel_txn_id,
                              created_at, updated_at, -1
                         FROM servicing_debit WHERE id = %s""", [debit.pk])
    debit.refresh_from_db()
    assert debit.payment_id and debit.result_file_id  # nothing above changed it
