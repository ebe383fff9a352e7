"""E-mail through Django's mail framework (EMAIL_BACKEND / EMAIL_HOST …), SMTP in production.

A refused recipient is permanent; a connection problem or a 4xx reply is retryable.
"""

from __future__ import annotations

import smtplib
import socket

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from notices.conf import conf

from .base import BaseBackend, OutgoingMessage, PermanentSendError, RetryableSendError, SendResult


def _classify(exc: Exception) -> Exception:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(400 <= c < 500 for c in codes):
            return RetryableSendError(f"smtp: recipient temporarily refused {codes}")
        return PermanentSendError(f"smtp: recipient refused {codes}")
    if isinstance(exc, smtplib.SMTPResponseException):
        err = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        cls = RetryableSendError if 400 <= exc.smtp_code < 500 else PermanentSendError
        return cls(f"smtp: {exc.smtp_code} {err}")
    if isinstance(exc, smtplib.SMTPServerDisconnected | OSError | socket.timeout):
        host = f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
        return RetryableSendError(f"smtp: cannot reach the mail server {host}: {exc}")
    return RetryableSendError(f"smtp: {type(exc).__name__}: {exc}")


class EmailBackend(BaseBackend):
    def send_messages(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        results = [SendResult(m.notice_id, error=PermanentSendError("email: borrower has no e-mail address"))
                   for m in messages if not m.to]
        messages = [m for m in messages if m.to]
        if not messages:
            return results
        connection = get_connection(fail_silently=False, timeout=conf("EMAIL_TIMEOUT"))
        try:
            connection.open()
        except Exception as exc:  # noqa: BLE001 — classified, reported per message
            err = _classify(exc)
            return results + [SendResult(m.notice_id, error=err) for m in messages]
        try:
            for m in messages:
                mail = EmailMessage(subject=m.subject, body=m.body, to=[m.to], connection=connection,
                                    headers={"X-RepayDesk-Notice": str(m.notice_id)})
                try:
                    mail.send()
                    results.append(SendResult(m.notice_id, mail.extra_headers.get("Message-ID", "")))
                except Exception as exc:  # noqa: BLE001
                    results.append(SendResult(m.notice_id, error=_classify(exc)))
        finally:
            try:
                connection.close()
            except Exception:  # noqa: BLE001, S110
                pass
        return results
