"""Settlement: the certificate (结清证明) PDF in Chinese, its verification page, re-issue, the KPI; and one
real e-mail through a local SMTP server (aiosmtpd)."""

from __future__ import annotations

import hashlib
import io
import shutil
import socket
import subprocess
from datetime import date, timedelta
from email import message_from_bytes, policy
from unittest import mock

import pytest
from pypdf import PdfReader

from notices.backends import memory
from notices.models import CertificateStatus, Notice, NoticeStatus, SettlementCertificate, SettlementKpiDay
from notices.services.certificates import issue_certificate
from notices.services.dispatch import dispatch_due
from notices.services.events import notify
from notices.services.kpi import refresh_settlement_kpi
from notices.services.templates import ensure_default_templates
from servicing.selectors import loan_status

from .test_notices_support import at, make_loan, notices_settings, pay_off

pytestmark = pytest.mark.django_db
DAY = at(2026, 2, 2, 10, 0)


@pytest.fixture(autouse=True)
def _notices(settings, tmp_path):
    settings.NOTICES = notices_settings()
    settings.MEDIA_ROOT = tmp_path / "media"
    memory.reset()
    ensure_default_templates()
    with mock.patch("django.utils.timezone.now", return_value=DAY):
        yield
    memory.reset()


@pytest.fixture
def settled(django_capture_on_commit_callbacks):
    loan = make_loan(name="欧阳明月", product="mortgage", months=60)
    with django_capture_on_commit_callbacks(execute=True):
        result = pay_off(loan)
    assert result.settled
    loan.refresh_from_db()
    return loan


def test_settlement_issues_certificate_renders_chinese_pdf_and_notifies(settled, tmp_path):
    cert = SettlementCertificate.objects.get(loan=settled)
    assert cert.status == CertificateStatus.ISSUED and cert.version == 1
    pdf = cert.pdf.read()
    assert hashlib.sha256(pdf).hexdigest() == cert.sha256
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for expected in ("结清证明", "欧阳明月", "结清", cert.number, cert.verification_code, "壹万贰仟元整",
                     "12,000.00", settled.contract_no, "征信", "房产", "110***********0011"):
        assert expected in text, expected
    assert "110101199000000011" not in text  # the ID number only masked
    if shutil.which("pdftoppm"):
        out = tmp_path / "page"
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(cert.pdf.path), str(out)],
                       check=True)
        png = next(tmp_path.glob("page*.png"))
        assert png.stat().st_size > 5000
    # the settlement notice links to the verify page
    sms = Notice.objects.get(event="settlement", channel="sms")
    assert sms.status == NoticeStatus.SENT
    assert f"/verify/{cert.verification_code}" in sms.body and cert.number in sms.body
    assert loan_status(settled)["certificate"] == {"number": cert.number, "verification_code": cert.verification_code,
                                                   "verify_url": f"/verify/{cert.verification_code}"}


def test_verify_page_confirms_genuine_and_rejects_forged(settled, client):
    cert = SettlementCertificate.objects.get(loan=settled)
    page = client.get(f"/verify/{cert.verification_code}")
    body = page.content.decode()
    assert page.status_code == 200 and "验证通过" in body
    assert "欧**" in body and settled.masked_contract_no in body and cert.number in body
    assert "欧阳明月" not in body and settled.contract_no not in body and settled.borrower.id_number not in body
    forged = client.get("/verify/ABCDEFGHJKLM")
    assert forged.status_code == 404 and "未找到" in forged.content.decode()
    assert client.get(f"/verify/{cert.verification_code.lower()}").status_code == 200


def test_reissue_is_a_new_version_and_old_code_says_superseded(settled, client, django_capture_on_commit_callbacks):
    old = SettlementCertificate.objects.get(loan=settled)
    with django_capture_on_commit_callbacks(execute=True):
        new = issue_certificate(settled, reason="更正借款人姓名")
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.status, new.status, new.version) == (CertificateStatus.SUPERSEDED, CertificateStatus.ISSUED, 2)
    assert new.number == f"{old.number}-2" and new.verification_code != old.verification_code and new.sha256
    assert "已被新版本替代" in client.get(f"/verify/{old.verification_code}").content.decode()
    assert issue_certificate(settled) == new  # without a reason: the current one, idempotent
    assert loan_status(settled)["certificate"]["number"] == new.number


def test_staff_download_and_borrower_cannot_download_others(settled, admin_client, client):
    cert = SettlementCertificate.objects.get(loan=settled)
    resp = admin_client.get(f"/certificates/{cert.pk}/download")
    assert resp.status_code == 200 and b"".join(resp.streaming_content).startswith(b"%PDF")
    assert "下载" in admin_client.get(f"/admin/notices/settlementcertificate/{cert.pk}/change/").content.decode()
    assert client.get(f"/certificates/{cert.pk}/download").status_code == 302  # login first


def test_pdf_rendering_happens_after_commit_not_in_the_payment(django_capture_on_commit_callbacks):
    loan = make_loan(name="李四")
    with mock.patch("notices.services.certificates.render_pdf_bytes") as render:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            pay_off(loan)
        assert not render.called
        cert = SettlementCertificate.objects.get(loan=loan)
        assert cert.status == CertificateStatus.PENDING
        render.return_value = b"%PDF-1.7 fake"
        for cb in callbacks:
            cb()
        assert render.call_count == 1
    cert.refresh_from_db()
    assert cert.status == CertificateStatus.ISSUED


def test_settlement_kpi_share_within_one_business_day(settled):
    notice = Notice.objects.filter(event="settlement", channel="sms").get()
    cause_day = notice.cause_at.astimezone(at(2026, 1, 1).tzinfo).date()
    refresh_settlement_kpi(cause_day, cause_day)
    row = SettlementKpiDay.objects.get(day=cause_day)
    assert (row.settlements, row.sent, row.within_one_business_day, row.share_within) == (1, 1, 1, 100.0)
    # a notice sent three days later misses the target
    Notice.objects.filter(event="settlement").update(sent_at=notice.cause_at + timedelta(days=5))
    refresh_settlement_kpi(cause_day, cause_day)
    row.refresh_from_db()
    assert row.within_one_business_day == 0 and row.share_within == 0.0


def test_real_smtp_delivery_through_aiosmtpd(settings):
    from aiosmtpd.controller import Controller

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            received.append(envelope)
            return "250 OK"

    with socket.socket() as probe:  # a free port (aiosmtpd cannot start on port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.NOTICES = notices_settings(BACKENDS={"email": "notices.backends.email.EmailBackend"})
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = port
        loan = make_loan(email="wang@example.com")
        [n] = notify("complaint_received", loan=loan, channels=["email"], on_date=date(2026, 2, 2),
                     context={"reference": "TS2026", "deadline": "2026-02-17"})
        stats = dispatch_due()
    finally:
        controller.stop()
    n.refresh_from_db()
    assert stats.sent == 1 and n.status == NoticeStatus.SENT
    [envelope] = received
    assert envelope.rcpt_tos == ["wang@example.com"]
    mail = message_from_bytes(envelope.content, policy=policy.default)
    assert mail["Subject"] == "投诉已受理" and "TS2026" in mail.get_content()
    assert mail["X-RepayDesk-Notice"] == str(n.pk)
