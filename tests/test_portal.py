"""Borrower self-service: login and reset, pages, pay-now idempotency, auto-debit, ownership (404), CSRF,
query counts constant in history size."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal import selectors
from portal.models import PayIntent, ResetCode
from servicing.models import Loan, Mandate, Payment
from tests.test_portal_support import (  # noqa: F401  (reference is a fixture)
    PASSWORD,
    TODAY,
    borrower_with_login,
    failed_debit,
    loan_with_mandate,
    many_payments,
    pay_instalments,
    planned_debit,
    reference,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _portal_today(monkeypatch, settings):
    monkeypatch.setattr(selectors, "today", lambda: TODAY)
    settings.NOTICES = {"BACKENDS": {"sms": "notices.backends.memory.MemoryBackend",
                                     "email": "notices.backends.memory.MemoryBackend",
                                     "in_app": "notices.backends.in_app.InAppBackend",
                                     "letter": "notices.backends.memory.MemoryBackend"}}
    settings.AXES_ENABLED = True
    from notices.backends import memory

    memory.reset()


@pytest.fixture
def alice(reference):  # noqa: F811
    """Paid instalments 1–2, instalments 3 (10 Apr) and 4 (10 May) unpaid; a failed debit on instalment 3."""
    b = borrower_with_login()
    loan = loan_with_mandate(b)
    pay_instalments(loan, 2)
    debit = failed_debit(loan, retry_on=TODAY + timedelta(days=1))
    return {"borrower": b, "loan": loan, "debit": debit}


@pytest.fixture
def bob(reference):  # noqa: F811
    b = borrower_with_login()
    loan = loan_with_mandate(b)
    pay_instalments(loan, 1)
    return {"borrower": b, "loan": loan, "debit": failed_debit(loan, retry_on=None)}


def login(client: Client, borrower) -> Client:
    client.force_login(borrower.user)
    return client


# --------------------------------------------------------------------------- anonymous and login


ANON_PAGES = ["portal:home", "portal:inbox", "portal:complaints", "portal:complaint_new", "portal:pay_shortcut",
              "portal:mandate_shortcut"]
ID_PAGES = ["portal:loan", "portal:pay", "portal:mandate", "portal:mandate_cancel", "portal:hardship",
            "portal:loan_json"]


def test_anonymous_users_are_sent_to_login(client, alice):
    loan, debit = alice["loan"], alice["debit"]
    urls = [reverse(n) for n in ANON_PAGES] + [reverse(n, args=[loan.pk]) for n in ID_PAGES] + [
        reverse("portal:debit", args=[debit.pk]), reverse("portal:certificate", args=[1]),
        reverse("portal:inbox_message", args=[1]), reverse("portal:complaint", args=[1]),
        reverse("portal:pay_result", args=[uuid.uuid4()])]
    for url in urls:
        r = client.get(url)
        assert r.status_code == 302, url
        assert r["Location"].startswith(reverse("portal:login") + "?next="), url


def test_login_by_phone_and_password_then_logout(client, alice):
    b = alice["borrower"]
    r = client.post(reverse("portal:login"), {"username": b.phone, "password": PASSWORD})
    assert r.status_code == 302 and r["Location"] == reverse("portal:home")
    assert client.get(reverse("portal:home")).status_code == 200
    assert client.get(reverse("portal:logout")).status_code == 405  # logout is a POST (CSRF-protected)
    client.post(reverse("portal:logout"))
    assert client.get(reverse("portal:home")).status_code == 302


def test_staff_account_cannot_use_self_service(client, alice, django_user_model):
    django_user_model.objects.create_user(username="ops9", password=PASSWORD, is_staff=True)
    r = client.post(reverse("portal:login"), {"username": "ops9", "password": PASSWORD})
    assert r.status_code == 200 and "手机号或密码不正确" in r.content.decode()


def test_axes_locks_phone_and_ip_after_failures_with_cool_off(client, alice, settings):
    from axes.models import AccessAttempt

    b = alice["borrower"]
    url = reverse("portal:login")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        r = client.post(url, {"username": b.phone, "password": "wrong-password"})
        assert r.status_code == 200
    r = client.post(url, {"username": b.phone, "password": "wrong-password"})
    assert r.status_code == 429 and "登录失败次数过多" in r.content.decode()
    # locked: even the right password is refused from this IP …
    r = client.post(url, {"username": b.phone, "password": PASSWORD})
    assert r.status_code == 429
    # … but the lock is on phone + IP: the borrower on another network can still log in
    other = Client(REMOTE_ADDR="10.9.9.9")
    assert other.post(url, {"username": b.phone, "password": PASSWORD}).status_code == 302
    # after the cool-off the lock lifts by itself
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(hours=1))
    r = client.post(url, {"username": b.phone, "password": PASSWORD})
    assert r.status_code == 302


def test_session_expires(client, alice, settings):
    assert settings.SESSION_COOKIE_AGE <= 60 * 60  # absolute expiry: 30 minutes after login
    login(client, alice["borrower"])
    assert client.get(reverse("portal:home")).status_code == 200
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    assert client.get(reverse("portal:home")).status_code == 302


# --------------------------------------------------------------------------- password reset


def _sent_code() -> str:
    from notices.backends import memory

    assert memory.outbox, "no SMS sent"
    body = memory.outbox[-1].body
    return next(tok for tok in body.replace("，", " ").split() if tok.isdigit() and len(tok) == 6)


def test_password_reset_by_sms_code(client, alice):
    from notices.backends import memory

    b = alice["borrower"]
    r = client.post(reverse("portal:password_reset"), {"phone": b.phone})
    assert r.status_code == 302
    assert len(memory.outbox) == 1 and memory.outbox[0].to == b.phone and memory.outbox[0].channel == "sms"
    code = _sent_code()
    rc = ResetCode.objects.get(user=b.user)
    assert code not in rc.code_hash and len(rc.code_hash) == 64  # only a keyed hash is stored
    r = client.post(reverse("portal:password_reset_confirm"),
                    {"phone": b.phone, "code": code, "new_password": "New-pass-2026x", "new_password2": "New-pass-2026x"})
    assert r.status_code == 302 and r["Location"] == reverse("portal:login")
    b.user.refresh_from_db()
    assert b.user.check_password("New-pass-2026x")
    # one time: the same code does not work twice
    r = client.post(reverse("portal:password_reset_confirm"),
                    {"phone": b.phone, "code": code, "new_password": "Other-pass-2026", "new_password2": "Other-pass-2026"})
    assert r.status_code == 200 and "验证码错误或已过期" in r.content.decode()


def test_reset_code_attempts_are_limited_and_codes_expire(client, alice):
    b = alice["borrower"]
    client.post(reverse("portal:password_reset"), {"phone": b.phone})
    code = _sent_code()
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    data = {"phone": b.phone, "new_password": "New-pass-2026x", "new_password2": "New-pass-2026x"}
    for _ in range(5):
        client.post(reverse("portal:password_reset_confirm"), {**data, "code": wrong})
    r = client.post(reverse("portal:password_reset_confirm"), {**data, "code": code})  # burnt after 5 wrong tries
    assert "验证码错误或已过期" in r.content.decode()
    b.user.refresh_from_db()
    assert b.user.check_password(PASSWORD)

    ResetCode.objects.update(created_at=timezone.now() - timedelta(hours=1))  # allow a new one
    client.post(reverse("portal:password_reset"), {"phone": b.phone})
    code = _sent_code()
    ResetCode.objects.filter(used_at__isnull=True).update(expires_at=timezone.now() - timedelta(seconds=1))
    r = client.post(reverse("portal:password_reset_confirm"), {**data, "code": code})
    assert "验证码错误或已过期" in r.content.decode()


def test_reset_does_not_reveal_unknown_numbers_and_is_rate_limited(client, alice):
    from notices.backends import memory

    r = client.post(reverse("portal:password_reset"), {"phone": "13999999999"})
    assert r.status_code == 302 and not memory.outbox
    b = alice["borrower"]
    client.post(reverse("portal:password_reset"), {"phone": b.phone})
    client.post(reverse("portal:password_reset"), {"phone": b.phone})  # within a minute: no second SMS
    assert len(memory.outbox) == 1


# --------------------------------------------------------------------------- home and loan page


def test_home_shows_status_next_due_and_exact_cure_amount(client, alice):
    loan = alice["loan"]
    login(client, alice["borrower"])
    r = client.get(reverse("portal:home"))
    html = r.content.decode()
    figures = selectors.loan_figures(loan, list(loan.instalments.exclude(status="superseded")), TODAY)
    assert figures.overdue_count == 2 and figures.overdue_amount > 0
    from servicing.domain.money import format_cny

    assert format_cny(figures.overdue_amount) in html and "逾期" in html
    assert figures.next_due_date == date(2026, 6, 10) and "2026-06-10" in html
    # the cure amount is exact: paying it leaves nothing overdue today
    from tests.factories import pay

    pay(loan, figures.overdue_amount, TODAY)
    after = selectors.loan_figures(loan, list(loan.instalments.exclude(status="superseded")), TODAY)
    assert after.overdue_amount == 0 and loan.credit_balance == 0


def test_loan_page_schedule_and_timeline(client, alice):
    loan = alice["loan"]
    login(client, alice["borrower"])
    html = client.get(reverse("portal:loan", args=[loan.pk])).content.decode()
    assert "已还清" in html and "已逾期" in html and "未到期" in html
    assert "扣款账户余额不足" in html  # the category in plain words, not the bank's message
    assert "我们将于 2026-05-21 再次尝试扣款" in html
    assert "第1期 本金" in html and "第1期 利息" in html  # what each payment paid


def test_no_retry_means_pay_now(client, bob):
    login(client, bob["borrower"])
    html = client.get(reverse("portal:debit", args=[bob["debit"].pk])).content.decode()
    assert "不再自动扣款 — 请立即还款" in html and reverse("portal:pay", args=[bob["loan"].pk]) in html
    # the bank's answer, dated, in words (not the pipeline's "failed")
    assert f"{bob['debit'].result_on:%Y-%m-%d} · 扣款失败" in html and "· failed" not in html


def test_loan_json_is_the_contract_shape(client, alice):
    login(client, alice["borrower"])
    data = client.get(reverse("portal:loan_json", args=[alice["loan"].pk])).json()
    assert data["contract_no"] == alice["loan"].contract_no and "****" in data["mandate"]["account"]


# --------------------------------------------------------------------------- pay now


def _pay(client, loan, kind, token=None, amount=""):
    return client.post(reverse("portal:pay", args=[loan.pk]),
                       {"kind": kind, "amount": amount, "token": token or str(uuid.uuid4())})


def test_pay_overdue_amount_then_result_shows_new_balance(client, alice):
    loan = alice["loan"]
    login(client, alice["borrower"])
    page = client.get(reverse("portal:pay", args=[loan.pk]))
    token = page.context["form"].initial["token"]
    cure = page.context["options"]["overdue"]
    r = _pay(client, loan, "overdue", token)
    assert r.status_code == 302
    intent = PayIntent.objects.get(token=token)
    assert intent.status == "succeeded" and intent.amount == cure and intent.payment.channel == "gateway"
    html = client.get(r["Location"]).content.decode()
    assert "支付成功" in html and "¥0.00" in html  # nothing overdue any more
    assert selectors.home(alice["borrower"], TODAY)[0].overdue_amount == 0


def test_double_submit_or_refresh_never_pays_twice(client, alice):
    loan = alice["loan"]
    login(client, alice["borrower"])
    token = str(uuid.uuid4())
    before = Payment.objects.filter(loan=loan).count()
    r1 = _pay(client, loan, "overdue", token)
    r2 = _pay(client, loan, "overdue", token)  # double click / refresh re-POST
    r3 = _pay(client, loan, "payoff", token)  # even with other fields changed
    assert r1["Location"] == r2["Location"] == r3["Location"]
    assert Payment.objects.filter(loan=loan).count() == before + 1
    assert PayIntent.objects.filter(token=token).count() == 1


def test_pay_any_amount_and_payoff_settles(client, alice):
    loan = alice["loan"]
    login(client, alice["borrower"])
    r = _pay(client, loan, "any", amount="abc")
    assert r.status_code == 200 and "请输入正确的金额" in r.content.decode()
    r = _pay(client, loan, "any", amount="100.00")
    assert PayIntent.objects.get(token=r["Location"].rstrip("/").split("/")[-1]).amount == Decimal("100.00")
    r = _pay(client, loan, "any", amount="9999999.00")
    assert "提前结清" in r.content.decode()
    r = _pay(client, loan, "payoff")
    loan.refresh_from_db()
    assert loan.status == "settled"
    assert "已结清" in client.get(r["Location"]).content.decode()


def test_another_borrowers_token_is_404(client, alice, bob):
    login(client, alice["borrower"])
    token = str(uuid.uuid4())
    _pay(client, alice["loan"], "overdue", token)
    client.force_login(bob["borrower"].user)
    assert client.get(reverse("portal:pay_result", args=[token])).status_code == 404
    assert _pay(client, bob["loan"], "overdue", token).status_code == 404  # replaying alice's token


# --------------------------------------------------------------------------- auto-debit


def test_cancel_mandate_shows_consequences_and_needs_password(client, alice):
    loan = alice["loan"]
    login(client, alice["borrower"])
    html = client.get(reverse("portal:mandate_cancel", args=[loan.pk])).content.decode()
    assert "2026-06-10" in html and "罚息" in html and "征信" in html and "主动还款" in html
    r = client.post(reverse("portal:mandate_cancel", args=[loan.pk]), {"understood": "on", "password": "nope"})
    assert r.status_code == 200 and "密码不正确" in r.content.decode()
    assert Mandate.objects.get(loan=loan, status="active")
    r = client.post(reverse("portal:mandate_cancel", args=[loan.pk]), {"password": PASSWORD})
    assert r.status_code == 200  # the consequences must be acknowledged
    r = client.post(reverse("portal:mandate_cancel", args=[loan.pk]), {"understood": "on", "password": PASSWORD})
    assert r.status_code == 302
    m = Mandate.objects.get(loan=loan)
    assert m.status == "cancelled" and m.cancel_cause == "borrower" and m.cancelled_by == alice["borrower"].user


def test_cancel_mandate_cancels_unsent_debits(client, bob):
    from servicing.models import Debit

    loan = bob["loan"]
    debit = planned_debit(loan, date(2026, 6, 10))
    login(client, bob["borrower"])
    client.post(reverse("portal:mandate_cancel", args=[loan.pk]), {"understood": "on", "password": PASSWORD})
    debit.refresh_from_db()
    assert debit.status == "cancelled"
    assert Debit.objects.get(pk=bob["debit"].pk).status == "failed"  # history is kept


def test_sign_new_account_is_pending_until_the_bank_confirms(client, alice):
    loan = alice["loan"]
    login(client, alice["borrower"])
    r = client.post(reverse("portal:mandate", args=[loan.pk]),
                    {"bank_code": "CMB", "account_no": "6225 8801 2345 6789", "agree": "on"})
    assert r.status_code == 302
    assert Mandate.objects.filter(loan=loan, status="pending", account_no="6225880123456789").exists()
    html = client.get(reverse("portal:mandate", args=[loan.pk])).content.decode()
    assert "6225 **** **** 6789" in html and "6225880123456789" not in html


# --------------------------------------------------------------------------- someone else's ids → 404


def test_other_borrowers_ids_are_404_everywhere(client, alice, bob, reference):  # noqa: F811
    from tests.test_portal_support import complaint_for, settle_with_certificate

    theirs = bob["loan"]
    login(client, alice["borrower"])
    for name in ID_PAGES:
        assert client.get(reverse(name, args=[theirs.pk])).status_code == 404, name
    assert client.get(reverse("portal:debit", args=[bob["debit"].pk])).status_code == 404
    # forms: the loan id in a POST
    for name, data in [("portal:pay", {"kind": "overdue", "token": str(uuid.uuid4())}),
                       ("portal:mandate", {"bank_code": "CMB", "account_no": "6225880123456789", "agree": "on"}),
                       ("portal:mandate_cancel", {"understood": "on", "password": PASSWORD}),
                       ("portal:hardship", {"kind": "deferral", "reason": "失业"})]:
        assert client.post(reverse(name, args=[theirs.pk]), data).status_code == 404, name
    r = client.post(reverse("portal:complaint_new"), {"loan": theirs.pk, "subject": "x", "description": "y"})
    assert r.status_code == 404
    assert Mandate.objects.get(loan=theirs).status == "active"
    # bob's certificate, complaint and inbox message
    other = loan_with_mandate(bob["borrower"], start=date(2026, 1, 12))
    cert = settle_with_certificate(other, TODAY)
    assert cert is not None
    assert client.get(reverse("portal:certificate", args=[cert.pk])).status_code == 404
    complaint = complaint_for(theirs)
    assert client.get(reverse("portal:complaint", args=[complaint.pk])).status_code == 404
    from notices.models import InboxMessage
    from notices.services import events
    from notices.services.dispatch import dispatch_due
    from notices.services.templates import ensure_default_templates

    ensure_default_templates()
    events.notify("debit_failed", loan=theirs, obj=bob["debit"], on_date=TODAY,
                  context={"reason": "余额不足", "category": "insufficient_funds", "amount": "100.00",
                           "next_step": "", "next_retry_on": "", "pay_url": ""})
    dispatch_due(now=(timezone.localtime() + timedelta(days=1)).replace(hour=12))  # past any quiet hours
    msg = InboxMessage.objects.filter(borrower=bob["borrower"]).first()
    assert msg is not None
    assert client.get(reverse("portal:inbox_message", args=[msg.pk])).status_code == 404
    # the staff REST API gives a borrower nothing, and the same answer for any contract number (no hint of
    # which exist)
    for contract in (alice["loan"].contract_no, theirs.contract_no, "NO-SUCH-CONTRACT"):
        r = client.get(f"/api/v1/loans/{contract}/")
        assert r.status_code == 403 and contract not in r.content.decode()


def test_owned_refuses_models_without_an_owner_path(alice):
    from servicing.models import JournalEntry

    with pytest.raises(LookupError):
        selectors.owned(alice["borrower"], JournalEntry)


# --------------------------------------------------------------------------- CSRF on every form


def test_every_form_needs_a_csrf_token(alice):
    loan = alice["loan"]
    c = Client(enforce_csrf_checks=True)
    assert c.post(reverse("portal:login"), {"username": alice["borrower"].phone, "password": PASSWORD}).status_code == 403
    assert c.post(reverse("portal:password_reset"), {"phone": alice["borrower"].phone}).status_code == 403
    assert c.post(reverse("portal:password_reset_confirm"), {}).status_code == 403
    c.force_login(alice["borrower"].user)
    posts = [reverse("portal:pay", args=[loan.pk]), reverse("portal:mandate", args=[loan.pk]),
             reverse("portal:mandate_cancel", args=[loan.pk]), reverse("portal:hardship", args=[loan.pk]),
             reverse("portal:complaint_new"), reverse("portal:logout"), reverse("set_language")]
    for url in posts:
        assert c.post(url, {"password": PASSWORD, "understood": "on"}).status_code == 403, url
    assert Mandate.objects.get(loan=loan, status="active")
    # with the token from the page, the same form goes through
    page = c.get(reverse("portal:mandate_cancel", args=[loan.pk]))
    token = page.cookies["csrftoken"].value if "csrftoken" in page.cookies else c.cookies["csrftoken"].value
    r = c.post(reverse("portal:mandate_cancel", args=[loan.pk]),
               {"password": PASSWORD, "understood": "on", "csrfmiddlewaretoken": token})
    assert r.status_code == 302


# --------------------------------------------------------------------------- queries constant in history size


def _history(n_payments: int):
    b = borrower_with_login()
    loan = loan_with_mandate(b)
    many_payments(loan, n_payments, date(2026, 2, 10))
    failed_debit(loan, retry_on=TODAY + timedelta(days=1))
    loan_with_mandate(b, product="credit_line", principal="5000.00", months=6, start=date(2026, 2, 1))
    return b, loan


def _count(django_assert_max_num_queries, client, url, limit):
    with django_assert_max_num_queries(limit) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("page", ["home", "loan", "pay", "inbox", "complaints", "mandate"])
def test_queries_per_page_do_not_grow_with_history(client, reference, django_assert_max_num_queries, page):  # noqa: F811
    counts = []
    for n in (2, 40):
        b, loan = _history(n)
        client.force_login(b.user)
        url = reverse(f"portal:{page}", args=[loan.pk] if page in ("loan", "pay", "mandate") else [])
        client.get(url)  # warm per-process caches (calendar)
        counts.append(_count(django_assert_max_num_queries, client, url, 16))
    assert counts[0] == counts[1], counts
    assert Payment.objects.filter(loan__borrower=b).count() >= 40


def test_english_on_request(client, alice):
    login(client, alice["borrower"])
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    html = client.get(reverse("portal:home")).content.decode()
    assert "Next due date" in html and "Pay now" in html
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    assert "下期还款日" in client.get(reverse("portal:home")).content.decode()


def test_loan_model_is_not_leaked_through_owned_queryset(alice, bob):
    assert list(selectors.owned(alice["borrower"], Loan)) == [alice["loan"]]


# --------------------------------------------------------------------------- complaints, hardship, links


def test_file_complaint_then_see_the_clock_and_the_answer(client, alice, django_user_model):
    from collections_app.models import Complaint
    from collections_app.services.complaints import answer_complaint

    loan = alice["loan"]
    login(client, alice["borrower"])
    assert str(loan.masked_contract_no) in client.get(reverse("portal:complaint_new")).content.decode()
    r = client.post(reverse("portal:complaint_new"),
                    {"loan": loan.pk, "subject": "扣款问题", "description": "同一期被扣了两次款，请核实。"})
    assert r.status_code == 302
    c = Complaint.objects.get(borrower=alice["borrower"])
    assert c.source == "portal" and c.filed_on == TODAY and c.due_on == TODAY + timedelta(days=15)
    html = client.get(r["Location"]).content.decode()
    assert c.reference in html and "2026-06-04" in html and "还剩 15 天" in html
    assert c.reference in client.get(reverse("portal:complaints")).content.decode()
    supervisor = django_user_model.objects.create_user(username="sup-portal", password="x", is_staff=True)
    answer_complaint(complaint=c, answer="经核实，第二笔扣款已退回。", root_cause="debit_problem",
                     actor=supervisor, on_date=TODAY + timedelta(days=3))
    html = client.get(reverse("portal:complaint", args=[c.pk])).content.decode()
    assert "经核实，第二笔扣款已退回。" in html and "已答复" in html


def test_hardship_request_needs_an_open_case(client, alice):
    loan = alice["loan"]
    login(client, alice["borrower"])
    r = client.post(reverse("portal:hardship", args=[loan.pk]), {"kind": "plan", "reason": "失业三个月"})
    assert r.status_code == 200 and "请填写希望分几期" in r.content.decode()
    from collections_app.services.cases import open_case_for

    assert open_case_for(loan) is None  # collections has not run: no case yet
    r = client.post(reverse("portal:hardship", args=[loan.pk]),
                    {"kind": "plan", "n_instalments": "6", "reason": "失业三个月"})
    assert r.status_code == 200 and "没有逾期" in r.content.decode()


def test_hardship_request_on_a_collection_case(client, alice):
    from collections_app.models import HardshipArrangement
    from collections_app.services.business_day import step
    from collections_app.services.cases import open_case_for
    from servicing.services.business_day import refresh_dpd

    loan = alice["loan"]
    from servicing.services.business_day import mark_overdue

    mark_overdue(TODAY)
    refresh_dpd(TODAY)
    step(TODAY)  # collections opens the case for the overdue loan
    assert open_case_for(loan) is not None
    login(client, alice["borrower"])
    r = client.post(reverse("portal:hardship", args=[loan.pk]),
                    {"kind": "plan", "n_instalments": "6", "reason": "失业三个月"})
    assert r.status_code == 302
    h = HardshipArrangement.objects.get(loan=loan)
    assert h.status == "requested" and h.n_instalments == 6 and h.requested_by is None


def test_pay_link_by_contract_number_is_scoped(client, alice, bob):
    login(client, alice["borrower"])
    r = client.get(f"/pay/{alice['loan'].contract_no}/")
    assert r.status_code == 302 and r["Location"] == reverse("portal:pay", args=[alice["loan"].pk])
    assert client.get(f"/pay/{bob['loan'].contract_no}/").status_code == 404
    assert client.get("/pay/").status_code == 302


# --------------------------------------------------------------------------- the fast path of home and loan


def _timeline_count(html: str, kind: str) -> int:
    return html.count(f'data-testid="timeline-{kind}"')


def test_cached_page_bodies_follow_every_change(client, alice):
    """The rendered bodies are kept per process keyed by the loan's data: a payment, a debit result or a
    retry change shows at once, without anything to invalidate."""
    from portal import fragments
    from servicing.domain.money import format_cny
    from servicing.models import Debit, RetryState
    from tests.factories import pay

    loan = alice["loan"]
    login(client, alice["borrower"])
    url = reverse("portal:loan", args=[loan.pk])
    first = client.get(url).content.decode()
    hits = fragments.stats["hits"]
    assert client.get(url).status_code == 200 and fragments.stats["hits"] == hits + 1  # served from the cache
    home_before = client.get(reverse("portal:home")).content.decode()

    pay(loan, Decimal("123.45"), TODAY)
    after = client.get(url).content.decode()
    assert _timeline_count(after, "payment") == _timeline_count(first, "payment") + 1
    assert "¥123.45" in after
    cure = selectors.home(alice["borrower"], TODAY)[0].overdue_amount
    home_after = client.get(reverse("portal:home")).content.decode()
    assert home_after != home_before and format_cny(cure) in home_after

    RetryState.objects.filter(loan=loan).update(next_retry_on=TODAY + timedelta(days=3))
    assert "我们将于 2026-05-23 再次尝试扣款" in client.get(url).content.decode()
    Debit.objects.filter(pk=alice["debit"].pk).update(status="returned")
    assert "银行已退回此笔扣款" in client.get(url).content.decode()


def test_home_and_loan_pages_are_three_queries(client, alice, django_assert_num_queries):
    """Session, user, and one statement for the page (borrower, unread count and the loan data)."""
    login(client, alice["borrower"])
    for url in (reverse("portal:home"), reverse("portal:loan", args=[alice["loan"].pk])):
        client.get(url)  # warm per-process caches (calendar)
        with django_assert_num_queries(3):
            assert client.get(url).status_code == 200


def test_staff_session_gets_no_borrower_pages(client, alice, django_user_model):
    staff = django_user_model.objects.create_user(username="ops8", password=PASSWORD, is_staff=True)
    client.force_login(staff)
    assert client.get(reverse("portal:home")).status_code == 403
    assert client.get(reverse("portal:loan", args=[alice["loan"].pk])).status_code == 403


def test_logout_ends_the_session_in_the_database(client, alice):
    login(client, alice["borrower"])
    key = client.cookies["sessionid"].value
    assert client.get(reverse("portal:home")).status_code == 200
    client.post(reverse("portal:logout"))
    assert not Session.objects.filter(session_key=key).exists()
    client.cookies["sessionid"] = key  # replaying the old cookie
    assert client.get(reverse("portal:home")).status_code == 302
