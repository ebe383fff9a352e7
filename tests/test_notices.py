"""Notices: the outbox (after commit, once, never in quiet hours), templates, rules, events, commands."""

from __future__ import annotations

import json
from datetime import date, timedelta
from io import StringIO
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from notices.backends import memory
from notices.backends.base import PermanentSendError, RetryableSendError
from notices.catalog import EVENTS, UnknownEvent
from notices.defaults import default_templates
from notices.models import InboxMessage, Notice, NoticeStatus, NoticeTemplate
from notices.selectors import collection_message_count, collection_message_counts, notice_log
from notices.services import business_day as notices_day
from notices.services.dispatch import dispatch_due
from notices.services.events import notify
from notices.services.outbox import NoticeError
from notices.services.preferences import PreferenceError, set_channel_opt_out
from notices.services.rules import next_allowed_time
from notices.services.templates import ensure_default_templates, preview
from notices.services.templating import TemplateError, validate
from servicing.models import Instalment
from servicing.services.mandates import cancel_mandate

from .test_notices_support import at, make_loan, notices_settings, pay

pytestmark = pytest.mark.django_db
DAY = at(2026, 2, 2, 10, 0)


@pytest.fixture(autouse=True)
def _notices(settings):
    settings.NOTICES = notices_settings()
    memory.reset()
    ensure_default_templates()
    with mock.patch("django.utils.timezone.now", return_value=DAY):
        yield
    memory.reset()


def sent(event=None, channel=None):
    return [m for m in memory.outbox
            if (event is None or Notice.objects.get(pk=m.notice_id).event == event)
            and (channel is None or m.channel == channel)]


# ------------------------------------------------------------------------------------------- outbox


def test_rolled_back_payment_sends_nothing(django_capture_on_commit_callbacks):
    loan = make_loan()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                pay(loan)
                assert Notice.objects.filter(event="payment_receipt").exists()  # written in the transaction
                raise RuntimeError("teller pressed cancel")
    assert callbacks == []
    assert not Notice.objects.exists()
    dispatch_due()
    assert memory.outbox == []


def test_committed_payment_sends_exactly_one_receipt_even_if_dispatch_runs_twice(django_capture_on_commit_callbacks):
    from notices.tasks import dispatch_due_notices

    loan = make_loan(email="wang@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        pay(loan, "700.00")
    dispatch_due()
    dispatch_due_notices()
    receipts = Notice.objects.filter(event="payment_receipt")
    assert sorted(receipts.values_list("channel", flat=True)) == ["email", "in_app", "sms"]
    assert all(n.status == NoticeStatus.SENT for n in receipts)
    assert len(sent("payment_receipt", "sms")) == 1
    assert len(sent("payment_receipt", "email")) == 1
    assert InboxMessage.objects.filter(borrower=loan.borrower).count() == 1
    sms = sent("payment_receipt", "sms")[0]
    assert "700.00" in sms.body and "王小明" in sms.body and sms.to == loan.borrower.phone
    # the same payment reference posted again is idempotent: no second receipt
    with django_capture_on_commit_callbacks(execute=True):
        pay(loan, "700.00")
    assert receipts.count() == 3 and len(sent("payment_receipt", "sms")) == 1


def test_unknown_event_is_a_clear_error():
    loan = make_loan()
    with pytest.raises(UnknownEvent, match="no_such_event.*known events: pre_debit_reminder"):
        notify("no_such_event", loan=loan)
    assert not Notice.objects.exists()


def test_missing_context_variable_is_refused_when_raised_not_at_send_time():
    loan = make_loan()
    with pytest.raises(NoticeError, match="missing reason, next_step"):
        notify("debit_failed", loan=loan, context={"amount": "100.00"})


def test_dedupe_key_event_object_date():
    loan = make_loan()
    first = notify("incident_apology", loan=loan, on_date=date(2026, 2, 2),
                   context={"incident_summary": "银行系统故障", "what_to_do": "无需操作"})
    again = notify("incident_apology", loan=loan, on_date=date(2026, 2, 2),
                   context={"incident_summary": "银行系统故障", "what_to_do": "无需操作"})
    other_day = notify("incident_apology", loan=loan, on_date=date(2026, 2, 3),
                       context={"incident_summary": "银行系统故障", "what_to_do": "无需操作"})
    assert len(first) == 2 and again == [] and len(other_day) == 2


# ------------------------------------------------------------------------------------------- quiet hours


@pytest.mark.parametrize(("local", "expected"), [
    (at(2026, 2, 2, 22, 30), at(2026, 2, 3, 8, 0)),
    (at(2026, 2, 2, 22, 0), at(2026, 2, 3, 8, 0)),
    (at(2026, 2, 3, 7, 59), at(2026, 2, 3, 8, 0)),
    (at(2026, 2, 3, 8, 0), at(2026, 2, 3, 8, 0)),
    (at(2026, 2, 3, 21, 59), at(2026, 2, 3, 21, 59)),
])
def test_next_allowed_time(local, expected):
    assert next_allowed_time(local) == expected


def test_notice_due_at_2230_goes_at_0800_next_morning_not_before():
    loan = make_loan()
    late = at(2026, 2, 2, 22, 30)
    [sms, _inbox] = notify("complaint_received", loan=loan, now=late,
                           context={"reference": "TS1", "deadline": "2026-02-17"})
    assert sms.scheduled_for == at(2026, 2, 3, 8, 0)
    for when in (late, at(2026, 2, 2, 23, 59), at(2026, 2, 3, 3, 0), at(2026, 2, 3, 7, 59)):
        stats = dispatch_due(now=when)
        assert stats.sent == 0
    assert memory.outbox == []
    stats = dispatch_due(now=at(2026, 2, 3, 8, 0))
    assert stats.sent == 2
    sms.refresh_from_db()
    assert sms.status == NoticeStatus.SENT and sms.sent_at == at(2026, 2, 3, 8, 0)


def test_retry_never_lands_in_quiet_hours():
    loan = make_loan()
    notify("complaint_received", loan=loan, channels=["sms"], context={"reference": "TS1", "deadline": "x"},
           now=at(2026, 2, 2, 21, 59))
    memory.MemoryBackend.fail_with = RetryableSendError("sms: provider HTTP 503")
    dispatch_due(now=at(2026, 2, 2, 21, 59))
    n = Notice.objects.get()
    assert n.status == NoticeStatus.QUEUED and n.scheduled_for == at(2026, 2, 3, 8, 0)
    assert n.attempts == 1 and "503" in n.last_error


# ------------------------------------------------------------------------------------------- failures


def test_retryable_errors_back_off_then_fail_with_reason(settings):
    settings.NOTICES = notices_settings(MAX_ATTEMPTS=3, BACKOFF_SECONDS=[60, 300])
    loan = make_loan()
    [n] = notify("complaint_received", loan=loan, channels=["sms"], context={"reference": "TS1", "deadline": "x"})
    memory.MemoryBackend.fail_with = RetryableSendError("sms: cannot reach provider")
    now = DAY
    dispatch_due(now=now)
    n.refresh_from_db()
    assert (n.status, n.attempts, n.scheduled_for) == (NoticeStatus.QUEUED, 1, now + timedelta(seconds=60))
    assert dispatch_due(now=now + timedelta(seconds=30)).claimed == 0  # not before the back-off
    dispatch_due(now=now + timedelta(seconds=60))
    n.refresh_from_db()
    assert (n.status, n.attempts, n.scheduled_for) == (NoticeStatus.QUEUED, 2, now + timedelta(seconds=360))
    dispatch_due(now=now + timedelta(seconds=360))
    n.refresh_from_db()
    assert n.status == NoticeStatus.FAILED and n.attempts == 3
    assert n.last_error == "gave up after 3 attempts: sms: cannot reach provider"


def test_permanent_error_fails_at_once_and_staff_can_requeue():
    from notices.services.dispatch import requeue

    loan = make_loan()
    [n] = notify("complaint_received", loan=loan, channels=["sms"], context={"reference": "TS1", "deadline": "x"})
    memory.MemoryBackend.fail_with = PermanentSendError("sms: provider code INVALID_PHONE")
    dispatch_due()
    n.refresh_from_db()
    assert n.status == NoticeStatus.FAILED and "INVALID_PHONE" in n.last_error and n.attempts == 1
    memory.MemoryBackend.fail_with = None
    assert requeue([n.pk]) == 1
    dispatch_due()
    n.refresh_from_db()
    assert n.status == NoticeStatus.SENT


def test_missing_template_fails_with_reason_nothing_lost():
    loan = make_loan()
    NoticeTemplate.objects.filter(event="complaint_received", channel="sms").delete()
    [n] = notify("complaint_received", loan=loan, channels=["sms"], context={"reference": "TS1", "deadline": "x"})
    dispatch_due()
    n.refresh_from_db()
    assert n.status == NoticeStatus.FAILED
    assert "no template for complaint_received × sms" in n.last_error


def test_unreachable_smtp_keeps_notice_queued_with_reason(settings):
    settings.NOTICES = notices_settings(BACKENDS={"email": "notices.backends.email.EmailBackend"})
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # discard port: nothing listens
    loan = make_loan(email="wang@example.com")
    [n] = notify("complaint_received", loan=loan, channels=["email"], context={"reference": "TS1", "deadline": "x"})
    stats = dispatch_due()
    n.refresh_from_db()
    assert stats.sent == 0 and stats.retried == 1
    assert n.status == NoticeStatus.QUEUED and n.attempts == 1
    assert "cannot reach the mail server 127.0.0.1:9" in n.last_error


def test_backend_crash_is_retried_not_lost(settings):
    settings.NOTICES = notices_settings(BACKENDS={"sms": "notices.backends.memory.MemoryBackend"})
    loan = make_loan()
    [n] = notify("complaint_received", loan=loan, channels=["sms"], context={"reference": "TS1", "deadline": "x"})
    with mock.patch("notices.backends.memory.MemoryBackend.send", side_effect=KeyError("boom")):
        dispatch_due()
    n.refresh_from_db()
    assert n.status == NoticeStatus.QUEUED and "backend error" in n.last_error


def test_stale_claim_is_released():
    from notices.services.dispatch import release_stale_claims

    loan = make_loan()
    [n] = notify("complaint_received", loan=loan, channels=["sms"], context={"reference": "TS1", "deadline": "x"})
    Notice.objects.filter(pk=n.pk).update(status=NoticeStatus.SENDING, claimed_at=DAY - timedelta(hours=1))
    assert release_stale_claims(DAY) == 1
    n.refresh_from_db()
    assert n.status == NoticeStatus.QUEUED and "re-queued" in n.last_error


# ------------------------------------------------------------------------------------------- templates


def test_every_event_has_valid_default_templates_in_both_languages():
    rows = default_templates()
    keys = {(r["event"], r["channel"], r["language"]) for r in rows}
    for event in EVENTS:
        for channel in ("sms", "email", "in_app", "letter"):
            for lang in ("zh-hans", "en"):
                assert (event, channel, lang) in keys
    for r in rows:
        validate(r["event"], r["subject"], r["body"])
    assert NoticeTemplate.objects.count() == len(rows)


def test_template_with_unknown_variable_is_refused_with_a_clear_message():
    with pytest.raises(TemplateError, match="unknown variable.*balance_due.*for event settlement"):
        validate("settlement", "结清", "您的余额 {{ balance_due }}")
    with pytest.raises(TemplateError, match="malformed placeholder"):
        validate("settlement", "", "{{ borrower_name|upper }}")
    subject, body = preview("settlement", "贷款已结清", "{{ borrower_name }}，{{ settled_on }} 结清")
    assert body == "张三，2026-03-15 结清"


def test_admin_form_refuses_bad_template_and_shows_preview(admin_client):
    tpl = NoticeTemplate.objects.get(event="settlement", channel="sms", language="zh-hans")
    url = f"/admin/notices/noticetemplate/{tpl.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    content = page.content.decode()
    assert "JQ20260315000001-1" in content  # preview with sample data
    resp = admin_client.post(url, {"event": "settlement", "channel": "sms", "language": "zh-hans",
                                   "subject": "x", "body": "欠款 {{ amount_owed }}"})
    assert resp.status_code == 200
    assert "amount_owed" in resp.content.decode() and "模板无法保存" in resp.content.decode()
    tpl.refresh_from_db()
    assert "amount_owed" not in tpl.body
    ok = admin_client.post(url, {"event": "settlement", "channel": "sms", "language": "zh-hans",
                                 "subject": "x", "body": "{{ borrower_name }} 已结清"})
    assert ok.status_code == 302


def test_english_borrower_gets_english_text():
    loan = make_loan(language="en")
    notify("complaint_received", loan=loan, channels=["sms"], context={"reference": "TS9", "deadline": "2026-03-01"})
    dispatch_due()
    [m] = memory.outbox
    assert "complaint TS9 is registered" in m.body


# ------------------------------------------------------------------------------------------- rules


def test_opt_out_suppresses_optional_notices_but_not_service_notices():
    loan = make_loan()
    set_channel_opt_out(borrower=loan.borrower, channel="sms", opted_out=True)
    with pytest.raises(PreferenceError):
        set_channel_opt_out(borrower=loan.borrower, channel="in_app", opted_out=True)
    receipt = {n.channel: n for n in notify("payment_receipt", loan=loan, obj=loan, context={
        "amount": "1", "value_date": "x", "paid_for": "x", "next_step": ""})}
    assert receipt["sms"].status == NoticeStatus.SUPPRESSED and "opted out" in receipt["sms"].last_error
    assert receipt["in_app"].status == NoticeStatus.QUEUED
    apology = {n.channel: n for n in notify("incident_apology", loan=loan, context={
        "incident_summary": "x", "what_to_do": "y"})}
    assert apology["sms"].status == NoticeStatus.QUEUED  # a service notice ignores the opt-out
    dispatch_due()
    assert all(m.channel != "sms" or Notice.objects.get(pk=m.notice_id).event != "payment_receipt"
               for m in memory.outbox)


def test_collection_message_count_for_contact_caps():
    loan = make_loan()
    b = loan.borrower.pk
    notify("overdue_reminder", loan=loan, on_date=date(2026, 2, 2), channels=["sms"])
    notify("overdue_reminder", loan=loan, obj=loan.instalments.first(), on_date=date(2026, 2, 2), channels=["sms"])
    notify("complaint_received", loan=loan, channels=["sms"], context={"reference": "r", "deadline": "d"})
    assert collection_message_count(b, date(2026, 2, 2)) == 2
    assert collection_message_count(b, date(2026, 1, 27), date(2026, 2, 2)) == 2
    assert collection_message_counts(b, date(2026, 2, 3)) == {"day": 0, "week": 2}
    dispatch_due()
    assert collection_message_count(b, date(2026, 2, 2)) == 2  # sent ones still count
    Notice.objects.filter(event="overdue_reminder").update(status=NoticeStatus.FAILED)
    assert collection_message_count(b, date(2026, 2, 2)) == 0


def test_overdue_reminder_accepts_a_collections_handover_context():
    loan = make_loan()
    [n] = notify("overdue_reminder", loan=loan, on_date=date(2026, 2, 2), channels=["in_app"], collection=True,
                 context={"kind": "agency_handover", "agency": "某某催收公司", "effective_on": "2026-02-05"})
    assert n.collection and "某某催收公司" in n.context["extra_note"] and n.context["as_of"] == "2026-02-02"
    dispatch_due()
    assert "某某催收公司" in InboxMessage.objects.get().body


# ------------------------------------------------------------------------------------------- events


def test_mandate_cancelled_states_the_consequences(django_capture_on_commit_callbacks):
    loan = make_loan(mandate=True)
    mandate = loan.mandates.get(status="active")
    with django_capture_on_commit_callbacks(execute=True):
        cancel_mandate(mandate, cause="borrower", reason="借款人致电解约")
    msg = InboxMessage.objects.get(borrower=loan.borrower)
    first = Instalment.objects.filter(loan=loan).order_by("due_date").first()
    assert first.due_date.isoformat() in msg.body
    assert f"{first.total_outstanding:,.2f}" in msg.body
    assert "6222 **** **** 5678" in msg.body
    for words in ("罚息", "征信", "重新签约", "主动"):
        assert words in msg.body


def test_business_day_rerun_queues_nothing_new(django_capture_on_commit_callbacks):
    from servicing.services.business_day import run_business_day

    loans = [make_loan(i, mandate=True, name=f"借款人{i}") for i in range(1, 4)]
    make_loan(9, name="无代扣")  # no mandate: no pre-debit reminder
    due = Instalment.objects.filter(loan=loans[0]).order_by("due_date").first().due_date
    d = due - timedelta(days=3)
    with django_capture_on_commit_callbacks(execute=True):
        run_business_day(d)
    reminders = Notice.objects.filter(event="pre_debit_reminder", loan__in=loans)
    assert reminders.count() == 6  # 3 loans × (sms, in_app); the loan without a mandate is the debits' case
    before = Notice.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        run_business_day(d)
        notices_day.step(d)
    assert Notice.objects.count() == before
    mine = [m for m in sent("pre_debit_reminder", "sms") if Notice.objects.get(pk=m.notice_id).loan in loans]
    assert len(mine) == 3
    body = mine[0].body
    assert due.isoformat() in body and "6222 **** **** 5678" in body


def test_notice_log_command():
    loan = make_loan()
    notify("complaint_received", loan=loan, context={"reference": "r", "deadline": "d"})
    dispatch_due()
    out = StringIO()
    call_command("notice_log", loan.contract_no, "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert [(r["event"], r["channel"], r["status"]) for r in data["notices"]] == [
        ("complaint_received", "sms", "sent"), ("complaint_received", "in_app", "sent")]
    assert data["notices"][0]["sent_at"].endswith("+08:00")
    assert notice_log(loan) == data["notices"]
    with pytest.raises(CommandError) as exc:
        call_command("notice_log", "HT-NOPE", "--json")
    assert exc.value.returncode == 2 and "HT-NOPE" in str(exc.value)


def test_ensure_schedules_is_idempotent():
    from django_q.models import Schedule

    from notices.tasks import ensure_schedules

    ensure_schedules()
    ensure_schedules()
    assert Schedule.objects.filter(name__startswith="notices.").count() == 3


def test_http_sms_adapter_maps_provider_replies(settings):
    import http.server
    import threading

    replies = iter([(200, {"code": "OK", "message_id": "M1"}), (503, {}), (200, {"code": "INVALID_PHONE"})])
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            status, body = next(replies)
            self.send_response(status)
            self.end_headers()
            self.wfile.write(json.dumps(body).encode())

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.NOTICES = notices_settings(
            BACKENDS={"sms": "notices.backends.sms_http.HttpSmsBackend"},
            SMS_HTTP={"ENDPOINT": f"http://127.0.0.1:{server.server_port}/send", "ACCESS_KEY": "k",
                      "SECRET": "s", "SIGN_NAME": "瑞沛"})
        loan = make_loan()
        ns = [notify("complaint_received", loan=loan, channels=["sms"], on_date=date(2026, 2, d),
                     context={"reference": f"T{d}", "deadline": "x"})[0] for d in (2, 3, 4)]
        dispatch_due()
    finally:
        server.shutdown()
    statuses = [Notice.objects.get(pk=n.pk) for n in ns]
    assert [(s.status, s.provider_ref) for s in statuses][0] == (NoticeStatus.SENT, "M1"), [(s.status, s.last_error, s.scheduled_for, s.attempts) for s in statuses]
    assert statuses[1].status == NoticeStatus.QUEUED and "HTTP 503" in statuses[1].last_error
    assert statuses[2].status == NoticeStatus.FAILED and "INVALID_PHONE" in statuses[2].last_error
    assert seen[0]["phone"] == loan.borrower.phone and seen[0]["out_id"] == str(ns[0].pk)
    assert len(seen[0]["signature"]) == 64



def test_admin_pages_open(admin_client):
    loan = make_loan()
    notify("complaint_received", loan=loan, context={"reference": "r", "deadline": "d"})
    dispatch_due()
    for model in ("notice", "noticetemplate", "channelpreference", "inboxmessage", "settlementcertificate",
                  "settlementkpiday"):
        assert admin_client.get(f"/admin/notices/{model}/").status_code == 200, model
    n = Notice.objects.first()
    assert admin_client.get(f"/admin/notices/notice/{n.pk}/change/").status_code == 200
    assert admin_client.get("/admin/notices/noticetemplate/add/").status_code == 200
