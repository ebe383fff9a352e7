"""The notices part of seed_demo: sent, quiet-hour-queued and failed notices, inbox messages, and a settled
loan with its certificate and a working verification URL."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.test.utils import override_settings

from servicing.demo import DemoContext


def seed(ctx: DemoContext) -> None:
    from notices.conf import conf
    from notices.models import CertificateStatus, InboxMessage, Notice, SettlementCertificate
    from notices.services.certificates import render_certificate_pdf
    from notices.services.dispatch import dispatch_due
    from notices.services.events import notify
    from notices.services.kpi import refresh_settlement_kpi
    from notices.services.templates import ensure_default_templates
    from notices.tasks import ensure_schedules
    from servicing.models import Loan
    from servicing.selectors import quote_payoff
    from servicing.services.payments import post_payment

    ensure_default_templates()
    ensure_schedules()
    tz = ZoneInfo(settings.TIME_ZONE)
    # rows raised by the services are scheduled by the wall clock: dispatch at the later of as_of 10:00 and now
    from django.utils import timezone

    from notices.services.rules import next_allowed_time

    def dispatch_time() -> datetime:
        return max(datetime.combine(ctx.as_of, time(10), tzinfo=tz), next_allowed_time(timezone.now()))

    late = datetime.combine(dispatch_time().astimezone(tz).date(), time(22, 30), tzinfo=tz)
    active = [loan for loan in Loan.objects.filter(pk__in=[x.pk for x in ctx.loans], status="active")
              .select_related("borrower", "product").order_by("pk")]
    if len(active) < 4:
        ctx.lines.append("notices: not enough active demo loans for the notices demo")
        return

    # a loan paid off today: settlement notice + certificate (rendered now so the verify URL works at once)
    payoff_loan = active[0]
    quote = quote_payoff(payoff_loan, ctx.as_of)
    post_payment(loan=payoff_loan, amount=quote.total, channel="transfer", value_date=ctx.as_of,
                 reference=f"DEMO-PAYOFF-{payoff_loan.pk}", prepay="payoff", note="demo payoff")
    # ordinary repayments: receipts
    for loan in active[1:3]:
        post_payment(loan=loan, amount="300.00", channel="counter", value_date=ctx.as_of,
                     reference=f"DEMO-PAY-{loan.pk}", note="demo payment")
    with transaction.atomic():
        # raised late in the evening: waits for 08:00 tomorrow (quiet hours)
        notify("incident_apology", loan=active[3], now=late, on_date=ctx.as_of, context={
            "incident_summary": f"{ctx.as_of} 银行代扣通道故障导致您的扣款未能执行",
            "what_to_do": "无需操作，我们将在下一个工作日重新扣款"})
        # an e-mail to a borrower without an address: fails with its reason, visible in the admin
        notify("complaint_received", loan=active[3], channels=["email"], on_date=ctx.as_of,
               context={"reference": f"TS{ctx.as_of:%Y%m%d}001", "deadline": str(ctx.as_of + timedelta(days=15))})
    for cert in SettlementCertificate.objects.filter(status=CertificateStatus.PENDING):
        render_certificate_pdf(cert.pk)
    outbox_dir = conf("FILE_PATH") or f"{settings.MEDIA_ROOT}/notices-outbox"
    backends = {**conf("BACKENDS"), "sms": "notices.backends.file.FileBackend"}
    with override_settings(NOTICES={**getattr(settings, "NOTICES", {}), "BACKENDS": backends}):
        morning = dispatch_time()
        stats = dispatch_due(now=morning)
    first_inbox = InboxMessage.objects.filter(borrower=active[1].borrower).first()
    if first_inbox:
        InboxMessage.objects.filter(pk=first_inbox.pk).update(read_at=morning)
    refresh_settlement_kpi(ctx.as_of - timedelta(days=7), ctx.as_of)

    cert = SettlementCertificate.objects.filter(loan=payoff_loan).exclude(status="superseded").first()
    base = settings.REPAYDESK.get("PUBLIC_BASE_URL", "").rstrip("/")
    counts = {s: Notice.objects.filter(status=s).count() for s in ("sent", "queued", "failed", "suppressed")}
    ctx.lines += [
        f"notices: {counts['sent']} sent, {counts['queued']} queued (incl. quiet hours), {counts['failed']} failed "
        f"with a reason — {base}/admin/notices/notice/ (SMS written to {outbox_dir})",
        f"notices: dispatched {stats.sent} this run; inbox messages: {InboxMessage.objects.count()}",
        f"settled loan {payoff_loan.contract_no}: certificate {cert.number} — verify at {base}/verify/"
        f"{cert.verification_code} ; notice_log: manage.py notice_log {payoff_loan.contract_no} --json",
        f"settlement-notice KPI: {base}/admin/notices/settlementkpiday/",
    ]
