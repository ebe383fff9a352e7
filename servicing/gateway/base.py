"""The adapter every payment gateway implements. Callbacks are verified by HMAC over the raw body."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class CallbackData:
    out_trade_no: str
    trade_no: str
    amount: Decimal
    succeeded: bool


class PaymentGateway:
    """Interface: `pay_url` for an order, `verify_callback` for its signed notification."""

    code = "base"
    timestamp_window = 300  # seconds either side of now

    def __init__(self, secret: bytes):
        self.secret = secret

    def pay_url(self, order) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def sign(self, timestamp: str, raw_body: bytes) -> str:
        return hmac.new(self.secret, timestamp.encode() + b"." + raw_body, hashlib.sha256).hexdigest()

    def verify_callback(self, raw_body: bytes, headers: dict, *, now: float | None = None) -> CallbackData:
        from .services import GatewayError, SignatureError

        ts = headers.get("X-Gateway-Timestamp", "")
        sig = headers.get("X-Gateway-Signature", "")
        if not ts.isdigit() or not sig:
            raise SignatureError("missing timestamp or signature header")
        now = time.time() if now is None else now
        if abs(now - int(ts)) > self.timestamp_window:
            raise SignatureError("timestamp outside the allowed window (replay?)")
        if not hmac.compare_digest(self.sign(ts, raw_body), sig):
            raise SignatureError("signature does not match the body")
        try:
            data = json.loads(raw_body)
            return CallbackData(out_trade_no=str(data["out_trade_no"]), trade_no=str(data["trade_no"]),
                                amount=Decimal(str(data["amount"])), succeeded=data["status"] == "SUCCESS")
        except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
            raise GatewayError(f"callback body is not valid: {exc}") from exc
