"""SMS through a provider's HTTP API (one concrete adapter; endpoint and credentials in settings).

Protocol (a common Chinese-provider shape): POST JSON {"access_key", "sign_name", "phone", "content",
"out_id", "timestamp", "signature"} where signature = HMAC-SHA256(secret, "access_key|phone|out_id|timestamp").
`out_id` is the notice id, so the provider drops a duplicate if a crashed worker re-sends.
Reply JSON {"code": "OK", "message_id": …}. 5xx, timeouts and throttling codes are retryable; anything else
(bad number, rejected content, bad credentials) is permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request

from notices.conf import conf

from .base import BaseBackend, OutgoingMessage, PermanentSendError, RetryableSendError

RETRYABLE_CODES = {"THROTTLED", "BUSY", "SYSTEM_ERROR"}


class HttpSmsBackend(BaseBackend):
    def __init__(self):
        cfg = conf("SMS_HTTP")
        self.endpoint = cfg["ENDPOINT"]
        self.access_key = cfg["ACCESS_KEY"]
        self.secret = cfg["SECRET"]
        self.sign_name = cfg["SIGN_NAME"]
        self.timeout = cfg["TIMEOUT"]

    def payload(self, message: OutgoingMessage) -> dict:
        ts = str(int(time.time()))
        base = f"{self.access_key}|{message.to}|{message.notice_id}|{ts}"
        sig = hmac.new(self.secret.encode(), base.encode(), hashlib.sha256).hexdigest()
        return {"access_key": self.access_key, "sign_name": self.sign_name, "phone": message.to,
                "content": message.body, "out_id": str(message.notice_id), "timestamp": ts, "signature": sig}

    def send(self, message: OutgoingMessage) -> str:
        if not self.endpoint:
            raise PermanentSendError("sms: NOTICES['SMS_HTTP']['ENDPOINT'] is not configured")
        data = json.dumps(self.payload(message), ensure_ascii=False).encode()
        request = urllib.request.Request(self.endpoint, data=data, method="POST",
                                         headers={"Content-Type": "application/json; charset=utf-8"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310 — configured URL
                reply = json.loads(resp.read().decode() or "{}")
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code == 429:
                raise RetryableSendError(f"sms: provider HTTP {exc.code}") from exc
            raise PermanentSendError(f"sms: provider refused the request, HTTP {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise RetryableSendError(f"sms: cannot reach provider {self.endpoint}: {exc}") from exc
        except ValueError as exc:
            raise RetryableSendError("sms: provider sent a reply that is not JSON") from exc
        code = str(reply.get("code", ""))
        if code == "OK":
            return str(reply.get("message_id", ""))
        detail = f"sms: provider code {code} {reply.get('message', '')}".strip()
        if code in RETRYABLE_CODES:
            raise RetryableSendError(detail)
        raise PermanentSendError(detail)
