"""Test backend: keeps messages in a class-level list (like django.core.mail.outbox).

`fail_with` lets a test make the next sends fail with a given error.
"""

from __future__ import annotations

from .base import BaseBackend, OutgoingMessage, SendError

outbox: list[OutgoingMessage] = []


class MemoryBackend(BaseBackend):
    fail_with: SendError | None = None

    def send(self, message: OutgoingMessage) -> str:
        if MemoryBackend.fail_with is not None:
            raise MemoryBackend.fail_with
        outbox.append(message)
        return f"mem-{message.notice_id}"


def reset() -> None:
    outbox.clear()
    MemoryBackend.fail_with = None
