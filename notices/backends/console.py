"""Development backend: writes each message to stdout (or a given stream)."""

from __future__ import annotations

import sys

from .base import BaseBackend, OutgoingMessage


class ConsoleBackend(BaseBackend):
    stream = None

    def send_messages(self, messages: list[OutgoingMessage]):
        stream = self.stream or sys.stdout
        stream.write("".join(f"[{m.channel} → {m.to}] #{m.notice_id} {m.subject}\n{m.body}\n---\n" for m in messages))
        stream.flush()
        return super().send_messages(messages)

    def send(self, message: OutgoingMessage) -> str:
        return f"console-{message.notice_id}"
