"""Active repayment through a gateway: create the order, apply its signed callback once per trade number."""

from __future__ import annotations

import hashlib
import os
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from servicing.domain.money import MoneyError, format_amount, parse_amount
from servicing.models import GatewayPayment, Loan
from servicing.models.debits import GatewayPaymentStatus
from servicing.services import audit


class GatewayError(ValueError):
    pass


class SignatureError(GatewayError):
    pass


def gateway_secret() -> bytes:
    secret = getattr(settings, "REPAYDESK_GATEWAY_SECRET", "") or os.environ.get("REPAYDESK_GATEWAY_SECRET", "")
    if secret:
        return secret.encode()
    return hashlib.sha256(f"gateway-sandbox:{settings.SECRET_KEY}".encode()).digest()


def get_gateway(code: str = "sandbox"):
    from .sandbox import SandboxGateway

    if code != "sandbox":
        raise GatewayError(f"gateway: '{code}' is not configured")
    return SandboxGateway(gateway_secret())


def start_gateway_payment(loan: Loan, amount: Decimal | str, purpose: str = "due", *, gateway: str = "sandbox") -> dict:
    """Create a payment order for `loan`; returns {"out_trade_no", "amount", "pay_url"}."""
    try:
        amount = parse_amount(str(amount))
    except MoneyError as exc:
        raise GatewayError(f"amount: {exc}") from exc
    if loan.status not in ("active", "overdue"):
        raise GatewayError(f"contract: loan {loan.contract_no} is {loan.status}; nothing to pay")
    with connection.cursor() as cur:
        cur.execute("SELECT nextval('servicing_debit_ref_seq')")
        (n,) = cur.fetchone()
    order = GatewayPayment.objects.create(out_trade_no=f"GP{timezone.localdate():%Y%m%d}{n:010d}", gateway=gateway,
                                          loan=loan, amount=amount, purpose=purpose[:20])
    return {"out_trade_no": order.out_trade_no, "amount": format_amount(amount),
            "pay_url": get_gateway(gateway).pay_url(order)}


def handle_callback(raw_body: bytes, headers: dict, *, gateway: str = "sandbox", now: float | None = None,
                    on_date: date | None = None) -> dict:
    """Verify and apply a gateway callback. Idempotent on the gateway's trade number."""
    data = get_gateway(gateway).verify_callback(raw_body, headers, now=now)
    with transaction.atomic():
        order = GatewayPayment.objects.select_for_update().filter(out_trade_no=data.out_trade_no).first()
        if order is None:
            raise GatewayError(f"out_trade_no: '{data.out_trade_no}' is not an order of ours")
        GatewayPayment.objects.filter(pk=order.pk).update(callback_count=order.callback_count + 1)
        if order.status != GatewayPaymentStatus.CREATED:
            if order.trade_no == data.trade_no:
                return {"ok": True, "duplicate": True, "status": order.status}
            raise GatewayError(f"order {order.out_trade_no} was already {order.status} with another trade number")
        if data.amount != order.amount:
            raise GatewayError(f"amount: {data.amount} differs from the order's {order.amount}")
        if not data.succeeded:
            GatewayPayment.objects.filter(pk=order.pk).update(status=GatewayPaymentStatus.FAILED,
                                                              trade_no=data.trade_no)
            return {"ok": True, "status": "failed"}
        from servicing.services.payments import post_payment

        value_date = on_date or timezone.localdate()
        result = post_payment(loan=order.loan, amount=order.amount, channel="gateway", value_date=value_date,
                              reference=f"GW{data.trade_no}"[:80], note=f"gateway {order.out_trade_no}")
        GatewayPayment.objects.filter(pk=order.pk).update(
            status=GatewayPaymentStatus.PAID, trade_no=data.trade_no, payment=result.payment, paid_at=timezone.now())
        audit.record("gateway.paid", order, trade_no=data.trade_no, amount=order.amount)
    return {"ok": True, "status": "paid", "payment": result.payment.reference}
