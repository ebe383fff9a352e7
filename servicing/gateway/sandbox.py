"""The sandbox gateway that ships with the product: a pay page that sends a signed callback."""

from __future__ import annotations

import json
import time
import uuid

from django.urls import reverse

from servicing.domain.money import format_amount

from .base import PaymentGateway


class SandboxGateway(PaymentGateway):
    code = "sandbox"

    def pay_url(self, order) -> str:
        return reverse("gateway-sandbox-pay", args=[order.out_trade_no])

    def build_callback(self, order, *, succeeded: bool, now: float | None = None) -> tuple[bytes, dict]:
        body = json.dumps({"out_trade_no": order.out_trade_no, "trade_no": f"SBX{uuid.uuid4().hex[:24].upper()}",
                           "amount": format_amount(order.amount), "status": "SUCCESS" if succeeded else "FAILED"},
                          separators=(",", ":")).encode()
        ts = str(int(time.time() if now is None else now))
        return body, {"X-Gateway-Timestamp": ts, "X-Gateway-Signature": self.sign(ts, body)}
