"""Self-service state changes, each one transaction, and the thin adapters onto the other apps' services.

Adapters (section at the end) call the debit pipeline, notices and collections by name; where a service
is not there yet they say so (``IntegrationPending``) or fall back to the servicing core, and the
README/report lists which integration is pending.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _

from servicing.domain.money import ZERO, MoneyError, parse_amount
from servicing.models import Borrower, Loan, Mandate
from servicing.models.loans import LoanStatus
from servicing.models.mandates import CancelCause, MandateStatus

from . import selectors
from .models import PayIntent, ResetCode

log = logging.getLogger(__name__)


class PortalError(ValueError):
    """Something the borrower asked that cannot be done; the message is shown to them."""


class IntegrationPending(PortalError):
    """The service of another app this page needs is not built yet."""


# --------------------------------------------------------------------------- pay now


@dataclass
class PayOutcome:
    intent: PayIntent
    created: bool  # False: the token was already used (double click / refresh) — nothing was paid again


def pay_now(*, borrower: Borrower, loan_id: int, kind: str, amount: str | None, token: str, user=None,
            as_of: date | None = None) -> PayOutcome:
    """Pay the chosen amount through the gateway, once per form token.

    The token's row is inserted first in its own transaction: a second submission of the same form (double
    click, refresh, back button) hits the unique constraint and gets the first one's outcome, never a second
    payment. Amounts for overdue/next/payoff are recomputed here, not taken from the form.
    """
    try:
        token_uuid = uuid.UUID(str(token))
    except ValueError as exc:
        raise PortalError(_("表单已失效，请刷新页面后重试")) from exc
    existing = PayIntent.objects.filter(token=token_uuid).first()
    if existing is not None:
        return _same_owner(existing, borrower)
    loan = selectors.loan_for_borrower(borrower, loan_id)  # 404 for someone else's loan
    as_of = as_of or selectors.today()
    if loan.status in (LoanStatus.SETTLED, LoanStatus.WRITTEN_OFF):
        raise PortalError(_("该贷款已结清，无需还款"))
    figures = selectors.loan_figures(loan, loan.live, as_of)
    options = selectors.pay_options(loan, figures, as_of)
    if kind == PayIntent.Kind.ANY:
        try:
            value = parse_amount(amount or "")
        except MoneyError as exc:
            raise PortalError(_("请输入正确的金额（最多两位小数）")) from exc
        if value > options.get("payoff", value):
            raise PortalError(_("金额超过提前结清所需金额 ¥%(total)s，请选择“提前结清”") % {
                "total": f"{options['payoff']:,.2f}"})
    elif kind in options:
        value = options[kind]
    else:
        raise PortalError(_("请选择还款方式"))
    if value <= ZERO:
        raise PortalError(_("当前没有需要支付的金额"))
    try:
        with transaction.atomic():
            intent = PayIntent.objects.create(token=token_uuid, borrower=borrower, loan=loan, kind=kind,
                                              amount=value, value_date=as_of)
    except IntegrityError:
        return _same_owner(PayIntent.objects.get(token=token_uuid), borrower)
    _execute(intent, loan, user)
    return PayOutcome(intent, created=True)


def _same_owner(intent: PayIntent, borrower: Borrower) -> PayOutcome:
    if intent.borrower_id != borrower.pk:
        from django.http import Http404

        raise Http404("not found")
    return PayOutcome(intent, created=False)


def _execute(intent: PayIntent, loan: Loan, user) -> None:
    """Charge through the gateway and post the payment; the intent records the outcome either way."""
    try:
        payment = gateway_pay(loan=loan, amount=intent.amount, purpose=intent.kind, reference=intent.reference,
                              value_date=intent.value_date, prepay="payoff" if intent.kind == "payoff" else "",
                              user=user, on_order=lambda ref: PayIntent.objects.filter(pk=intent.pk).update(
                                  gateway_ref=ref))
    except Exception as exc:  # the borrower sees a plain failure; ops see the log
        log.warning("portal payment %s failed: %s", intent.token, exc)
        PayIntent.objects.filter(pk=intent.pk).update(
            status=PayIntent.Status.FAILED, error=str(exc)[:300], finished_at=timezone.now())
        intent.status, intent.error = PayIntent.Status.FAILED, str(exc)[:300]
        return
    PayIntent.objects.filter(pk=intent.pk).update(status=PayIntent.Status.SUCCEEDED, payment=payment,
                                                  finished_at=timezone.now())
    intent.status, intent.payment = PayIntent.Status.SUCCEEDED, payment


def new_pay_token() -> str:
    return str(uuid.uuid4())


# --------------------------------------------------------------------------- auto-debit


def check_password_or_fail(user, password: str) -> None:
    if not password or not user.check_password(password):
        raise PortalError(_("密码不正确"))


def cancel_auto_debit(*, borrower: Borrower, loan_id: int, password: str, user) -> Mandate:
    """The borrower cancels the loan's mandate after reading the consequences and re-entering the password."""
    loan = selectors.loan_for_borrower(borrower, loan_id)
    mandate = selectors.owned(borrower, Mandate).filter(
        loan=loan, status__in=[MandateStatus.ACTIVE, MandateStatus.SUSPENDED, MandateStatus.PENDING]
    ).order_by("-signed_at").first()
    if mandate is None:
        raise PortalError(_("该贷款没有生效的代扣协议"))
    check_password_or_fail(user, password)
    from servicing.services.mandates import cancel_mandate

    # cancel_mandate also cancels the mandate's unsent debits (debit pipeline hook) and tells the borrower
    return cancel_mandate(mandate, cause=CancelCause.BORROWER, reason="借款人自助解约", user=user)


BANKS = [("ICBC", "中国工商银行"), ("CCB", "中国建设银行"), ("ABC", "中国农业银行"), ("BOC", "中国银行"),
         ("CMB", "招商银行"), ("BOCOM", "交通银行")]


def sign_new_account(*, borrower: Borrower, loan_id: int, account_no: str, bank_code: str, user) -> Mandate:
    """A new mandate (pending the bank's confirmation); once confirmed it replaces the current one."""
    from servicing.models import Channel
    from servicing.services.mandates import MandateError, sign_mandate

    loan = selectors.loan_for_borrower(borrower, loan_id)
    if loan.status in (LoanStatus.SETTLED, LoanStatus.WRITTEN_OFF):
        raise PortalError(_("该贷款已结清，无需签约代扣"))
    current = selectors._usable_mandate(loan)
    channel = current.channel if current else Channel.objects.filter(code="std").first()
    if channel is None:
        raise PortalError(_("暂不支持线上签约，请联系客服"))
    try:
        return sign_mandate(loan=loan, channel=channel, account_no=account_no, account_name=borrower.name,
                            bank_code=bank_code, user=user)
    except MandateError as exc:
        text = str(exc)
        if text.startswith("account-no"):
            raise PortalError(_("请输入 12–19 位银行卡号")) from exc
        if "awaiting confirmation" in text:
            raise PortalError(_("已有一个新账户在等待银行确认，请勿重复签约")) from exc
        raise PortalError(_("签约失败，请核对信息或联系客服")) from exc


# --------------------------------------------------------------------------- inbox


def mark_read(*, borrower: Borrower, message_id: int):
    model = inbox_model()
    if model is None:
        raise IntegrationPending(_("站内信暂不可用"))
    msg = selectors.get_owned(borrower, model, pk=message_id)
    if msg.read_at is None:
        model.objects.filter(pk=msg.pk, read_at__isnull=True).update(read_at=timezone.now())
        msg.read_at = timezone.now()
    return msg


# --------------------------------------------------------------------------- password reset by SMS code

RESET_CODE_TTL = timedelta(minutes=10)
RESET_MAX_ATTEMPTS = 5
RESET_RESEND_AFTER = timedelta(seconds=60)
RESET_MAX_PER_DAY = 5


def _code_hash(user_id: int, code: str) -> str:
    return salted_hmac("portal.reset-code", f"{user_id}:{code}", algorithm="sha256").hexdigest()


def _user_by_phone(phone: str):
    borrower = Borrower.objects.select_related("user").filter(phone=phone.strip(), user__isnull=False).first()
    return (borrower.user, borrower) if borrower else (None, None)


def request_reset_code(*, phone: str, ip: str | None = None) -> None:
    """Send a 6-digit code by SMS. Says nothing about whether the number exists (no account probing);
    at most one code a minute and five a day per account; a new code voids the older ones."""
    user, borrower = _user_by_phone(phone)
    if user is None or not user.is_active:
        return
    now = timezone.now()
    recent = ResetCode.objects.filter(user=user, created_at__gte=now - timedelta(days=1))
    if recent.count() >= RESET_MAX_PER_DAY or recent.filter(created_at__gte=now - RESET_RESEND_AFTER).exists():
        return
    code = f"{secrets.randbelow(10**6):06d}"
    with transaction.atomic():
        ResetCode.objects.filter(user=user, used_at__isnull=True).update(used_at=now)
        rc = ResetCode.objects.create(user=user, code_hash=_code_hash(user.pk, code), expires_at=now + RESET_CODE_TTL,
                                      request_ip=ip)
    send_reset_sms(borrower, code, rc.pk)


def reset_password(*, phone: str, code: str, new_password: str) -> None:
    user, _borrower = _user_by_phone(phone)
    invalid = PortalError(_("验证码错误或已过期，请重新获取"))
    if user is None:
        raise invalid
    try:
        validate_password(new_password, user)
    except ValidationError as exc:
        raise PortalError(" ".join(exc.messages)) from exc
    now = timezone.now()
    with transaction.atomic():
        rc = (ResetCode.objects.select_for_update().filter(user=user, used_at__isnull=True, expires_at__gt=now)
              .order_by("-created_at").first())
        if rc is None or rc.attempts >= RESET_MAX_ATTEMPTS:
            ok = False
        else:
            ok = constant_time_compare(rc.code_hash, _code_hash(user.pk, code.strip()))
            if ok:
                rc.used_at = now
                rc.save(update_fields=["used_at"])
                user.set_password(new_password)
                user.save(update_fields=["password"])
            else:
                rc.attempts += 1
                if rc.attempts >= RESET_MAX_ATTEMPTS:
                    rc.used_at = now  # burnt: a new code must be requested
                rc.save(update_fields=["attempts", "used_at"])
    if not ok:
        raise invalid
    from axes.utils import reset as axes_reset

    axes_reset(username=user.get_username())


# =========================================================================== adapters onto other apps


def gateway_pay(*, loan: Loan, amount: Decimal, purpose: str, reference: str, value_date: date, prepay: str,
                user=None, on_order=None):
    """Charge `amount` through the sandbox payment gateway and return the posted servicing Payment.

    The debit pipeline's gateway creates the order (``start_gateway_payment``); the sandbox is completed
    in-process with the same signed callback its own pay page sends (``build_callback`` + ``handle_callback``),
    so the borrower sees the result at once. A real gateway would redirect to ``pay_url`` instead.

    PENDING INTEGRATION: the gateway's callback posts without ``prepay``, so a payoff paid through it would
    leave the surplus as credit balance instead of settling. Until the gateway carries the purpose
    ``payoff`` through to ``post_payment(prepay="payoff")``, a payoff is posted through the servicing core on
    the gateway channel (idempotent on our reference). Without the gateway module at all, the same fallback
    applies to every purpose.
    """
    gateway = _gateway_module()
    if gateway is not None and (not prepay or _gateway_supports_prepay(gateway)):
        from servicing.models import GatewayPayment

        started = gateway.start_gateway_payment(loan, amount, purpose)
        order = GatewayPayment.objects.get(out_trade_no=started["out_trade_no"])
        if on_order is not None:
            on_order(order.out_trade_no)
        body, headers = gateway.get_gateway(order.gateway).build_callback(order, succeeded=True)
        gateway.handle_callback(body, headers, gateway=order.gateway, on_date=value_date)
        order.refresh_from_db()
        if order.payment_id is None:
            raise PortalError(_("支付未完成"))
        return order.payment
    from servicing.services.payments import post_payment

    return post_payment(loan=loan, amount=amount, channel="gateway", value_date=value_date, reference=reference,
                        prepay=prepay, user=user, note=f"self-service {purpose}").payment


def _gateway_module():
    try:
        from servicing.gateway import services
    except ImportError:
        return None
    needed = ("start_gateway_payment", "handle_callback", "get_gateway")
    return services if all(hasattr(services, n) for n in needed) else None


def _gateway_supports_prepay(gateway) -> bool:
    import inspect

    return "prepay" in inspect.signature(gateway.handle_callback).parameters or getattr(
        gateway, "SUPPORTS_PREPAY", False)


def send_reset_sms(borrower: Borrower, code: str, code_id: int) -> None:
    """The code goes straight through the notices SMS channel backend (not the outbox: a reset code must not
    wait for quiet hours, and it must never be stored in clear in a notice row)."""
    from notices.backends import OutgoingMessage, get_backend

    lang = "en" if borrower.language == "en" else "zh-hans"
    body = (f"Your RepayDesk password reset code is {code}. It expires in 10 minutes. Never share it."
            if lang == "en" else f"您的重置密码验证码为 {code}，10 分钟内有效。请勿告诉任何人。")
    message = OutgoingMessage(notice_id=-code_id, channel="sms", borrower_id=borrower.pk, to=borrower.phone,
                              subject="reset code", body=body, language=lang)
    for result in get_backend("sms").send_messages([message]):
        if not result.ok:
            log.warning("portal: reset code SMS to borrower %s failed: %s", borrower.pk, result.error)


def inbox_model():
    try:
        from notices.models import InboxMessage
    except ImportError:
        return None
    return InboxMessage


def certificate_model():
    try:
        from notices.models import SettlementCertificate
    except ImportError:
        return None
    return SettlementCertificate


def complaint_model():
    try:
        from collections_app.models import Complaint
    except ImportError:
        return None
    return Complaint


def verify_path(code: str) -> str:
    try:
        from notices.services.certificates import verify_path as theirs
    except ImportError:
        return f"/verify/{code}"
    return theirs(code)


def certificate_pdf(cert):
    """The certificate's PDF file; rendered now if the worker has not done it yet."""
    if not cert.pdf:
        try:
            from notices.services.certificates import render_certificate_pdf
        except ImportError as exc:
            raise IntegrationPending(_("结清证明正在生成，请稍后再试")) from exc
        render_certificate_pdf(cert.pk)
        cert.refresh_from_db()
    if not cert.pdf:
        raise IntegrationPending(_("结清证明正在生成，请稍后再试"))
    return cert.pdf


def file_complaint(*, borrower: Borrower, loan_id: int, subject: str, description: str, user):
    """A complaint filed in self-service, through collections' ``file_complaint`` (source portal)."""
    loan = selectors.loan_for_borrower(borrower, loan_id)
    try:
        from collections_app.services.cases import CollectionsError
        from collections_app.services.complaints import file_complaint as theirs
    except ImportError as exc:
        raise IntegrationPending(_("线上投诉暂不可用，请致电客服 400-800-1235")) from exc
    try:
        return theirs(loan=loan, subject=subject, description=description, on_date=selectors.today(),
                      filed_by=None, source="portal")
    except CollectionsError as exc:
        raise PortalError(str(exc)) from exc


def request_hardship(*, borrower: Borrower, loan_id: int, kind: str, reason: str, user, n_instalments=None,
                     defer_to=None):
    """A hardship request (deferral or repayment plan) on the loan's collection case, through collections'
    ``request_hardship`` (actor None = the borrower in self-service); a supervisor decides."""
    loan = selectors.loan_for_borrower(borrower, loan_id)
    try:
        from collections_app.services.cases import CollectionsError, open_case_for
        from collections_app.services.work import request_hardship as theirs
    except ImportError as exc:
        raise IntegrationPending(_("线上困难救助申请暂不可用，请致电 400-800-1236")) from exc
    case = open_case_for(loan)
    if case is None:
        raise PortalError(_("您的贷款目前没有逾期，无需申请。如预计无法按时还款，请致电 400-800-1236"))
    try:
        return theirs(case=case, kind=kind, reason=reason, actor=None, on_date=selectors.today(),
                      n_instalments=n_instalments, defer_to=defer_to)
    except CollectionsError as exc:
        raise PortalError(str(exc)) from exc
