"""Channel backends, chosen per channel in settings.NOTICES["BACKENDS"] (like EMAIL_BACKEND)."""

from __future__ import annotations

from django.utils.module_loading import import_string

from notices.conf import conf

from .base import BaseBackend, OutgoingMessage, PermanentSendError, RetryableSendError, SendResult

__all__ = ["BaseBackend", "OutgoingMessage", "PermanentSendError", "RetryableSendError", "SendResult",
           "get_backend"]


def get_backend(channel: str) -> BaseBackend:
    path = conf("BACKENDS").get(channel)
    if not path:
        raise PermanentSendError(f"no backend configured for channel '{channel}' (settings.NOTICES['BACKENDS'])")
    return import_string(path)()
