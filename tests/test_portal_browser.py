"""Borrower journeys in Debian's Chromium (Playwright, sync API) against pytest-django's live server.

Skipped cleanly when /usr/bin/chromium or Playwright is missing. Run only these: ``pytest -m browser``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from portal import selectors
from servicing.models import Mandate
from tests.test_portal_support import (  # noqa: F401  (reference is a fixture)
    PASSWORD,
    TODAY,
    borrower_with_login,
    failed_debit,
    loan_with_mandate,
    pay_instalments,
    reference,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (/usr/bin/chromium)"),
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    pg.base = live_server.url
    yield pg
    context.close()


@pytest.fixture
def journey(transactional_db, reference, monkeypatch, settings):  # noqa: F811
    monkeypatch.setattr(selectors, "today", lambda: TODAY)
    settings.NOTICES = {"BACKENDS": {"sms": "notices.backends.memory.MemoryBackend",
                                     "email": "notices.backends.memory.MemoryBackend",
                                     "in_app": "notices.backends.in_app.InAppBackend",
                                     "letter": "notices.backends.memory.MemoryBackend"}}
    b = borrower_with_login()
    loan = loan_with_mandate(b)
    pay_instalments(loan, 2)
    debit = failed_debit(loan, retry_on=TODAY + timedelta(days=1))
    return {"borrower": b, "loan": loan, "debit": debit}


def log_in(page, borrower):
    page.goto(page.base + "/")
    assert "/login/" in page.url  # anonymous → login
    page.fill("input[name=username]", borrower.phone)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(page.base + "/")


def test_journey_failed_debit_pay_overdue_pay_off_certificate(page, journey, tmp_path):
    loan = journey["loan"]
    log_in(page, journey["borrower"])
    # home: the overdue warning with the exact amount to cure
    cure = page.text_content("[data-testid=cure-amount]")
    assert cure.startswith("¥")
    page.click(f"[data-testid=loan-{loan.pk}] >> text=查看详情")
    # loan page: the failed debit, why, and what happens next
    failed = page.locator("[data-testid=timeline-debit]").first
    assert "扣款账户余额不足" in failed.text_content()
    assert "2026-05-21" in failed.text_content()
    # pay the overdue amount
    page.click("text=立即还款 >> nth=0")
    assert page.text_content("[data-testid=opt-overdue]") == cure
    page.check("input[value=overdue]")
    page.click("[data-testid=pay-submit]")
    assert page.text_content("[data-testid=pay-result]") == "支付成功"
    assert page.text_content("[data-testid=overdue-now]") == "¥0.00"
    # see it paid: the schedule shows the two instalments paid, the loan current
    page.click("text=查看贷款详情")
    assert page.text_content("[data-testid=loan-status]") == "正常"
    assert page.locator("tr.st-paid").count() == 4
    assert page.locator("tr.st-overdue").count() == 0
    # pay off
    page.click("text=还款 / 提前结清")
    page.check("input[value=payoff]")
    page.click("[data-testid=pay-submit]")
    assert page.text_content("[data-testid=pay-result]") == "支付成功"
    assert page.text_content("[data-testid=loan-status]") == "已结清"
    page.click("text=查看贷款详情")
    # the certificate: download it, and the public verification link
    link = page.locator("[data-testid=certificate-download]")
    if link.count() == 0:
        pytest.fail("no settlement certificate offered after payoff (notices' certificate integration)")
    with page.expect_download() as dl:
        link.click()
    path = tmp_path / "cert.pdf"
    dl.value.save_as(path)
    assert path.read_bytes()[:5] == b"%PDF-"
    verify = page.get_attribute("[data-testid=verify-link]", "href")
    assert verify.startswith("/verify/")


def test_cancel_mandate_after_reading_the_consequences(page, journey):
    loan = journey["loan"]
    log_in(page, journey["borrower"])
    page.goto(f"{page.base}/loans/{loan.pk}/")
    page.click("text=管理")
    assert "****" in page.text_content("[data-testid=mandate-account]")
    page.click("text=解约自动扣款")
    consequences = page.text_content("[data-testid=consequences]")
    assert "2026-06-10" in consequences and "罚息" in consequences and "征信" in consequences
    page.fill("input[name=password]", "wrong-password")
    page.check("input[name=understood]")
    page.click("[data-testid=confirm-cancel]")
    assert "密码不正确" in page.content()
    assert Mandate.objects.get(loan=loan).status == "active"
    page.check("input[name=understood]")
    page.fill("input[name=password]", PASSWORD)
    page.click("[data-testid=confirm-cancel]")
    page.wait_for_url(f"{page.base}/loans/{loan.pk}/")
    assert "自动扣款已解约" in page.content()
    m = Mandate.objects.get(loan=loan)
    assert m.status == "cancelled" and m.cancel_cause == "borrower"


def test_file_a_complaint(page, journey):
    log_in(page, journey["borrower"])
    page.click("nav >> text=投诉")
    page.click("text=提交投诉")
    page.select_option("select[name=loan]", str(journey["loan"].pk))
    page.fill("input[name=subject]", "扣款问题")
    page.fill("textarea[name=description]", "同一期被扣了两次款，请核实。")
    page.click("[data-testid=complaint-submit]")
    ref = page.text_content("[data-testid=complaint-ref]")
    assert ref.startswith("TS")
    assert "2026-06-04" in page.text_content("[data-testid=complaint-clock]")
    assert page.text_content("[data-testid=complaint-status]") == "处理中"
