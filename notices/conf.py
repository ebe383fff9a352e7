"""settings.NOTICES merged over these defaults, read at call time (tests override settings)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "BACKENDS": {
        "sms": "notices.backends.console.ConsoleBackend",
        "email": "notices.backends.email.EmailBackend",
        "in_app": "notices.backends.in_app.InAppBackend",
        "letter": "notices.backends.letter.LetterBackend",
    },
    # the concrete SMS provider adapter (notices.backends.sms_http.HttpSmsBackend)
    "SMS_HTTP": {"ENDPOINT": "", "ACCESS_KEY": "", "SECRET": "", "SIGN_NAME": "", "TIMEOUT": 5},
    "EMAIL_TIMEOUT": 10,  # seconds; Django's SMTP default is to wait forever
    "FILE_PATH": "",  # file backend directory; default MEDIA_ROOT/notices-outbox
    "LETTER_PATH": "",  # letter PDFs; default MEDIA_ROOT/letters
    "CHUNK": 500,  # notices claimed per round
    "MAX_ATTEMPTS": 5,  # our own counter: a task that kills its worker is never counted by django-q2
    "BACKOFF_SECONDS": [60, 300, 1800, 7200],  # after attempt 1, 2, 3, 4…(last value repeats)
    "CLAIM_LEASE_SECONDS": 900,  # a notice left `sending` longer than this (dead worker) is re-queued
    "DISPATCH_SECONDS": 240,  # one dispatch task works at most this long, then re-enqueues itself
    "SYNC_TASKS": False,  # True: run dispatch / PDF rendering in-process right after commit (tests, demo)
    "PAY_PATH": "/pay/",  # self-service pages named in messages (PUBLIC_BASE_URL + path)
    "RESIGN_PATH": "/mandate/sign/",
    "SERVICE_PHONE": "400-800-1234",
    "COMPLAINT_PHONE": "400-800-1235",
    "HARDSHIP_PHONE": "400-800-1236",
}


def conf(key: str) -> Any:
    value = getattr(settings, "NOTICES", {}).get(key, DEFAULTS[key])
    if isinstance(DEFAULTS[key], dict):
        return {**DEFAULTS[key], **value}
    return value


def business(key: str, default: Any = None) -> Any:
    return getattr(settings, "REPAYDESK", {}).get(key, default)


def public_url(path: str) -> str:
    return business("PUBLIC_BASE_URL", "").rstrip("/") + path
