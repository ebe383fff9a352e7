"""Development backend: one JSON line per message appended to a file per channel and day."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from notices.conf import conf

from .base import BaseBackend, OutgoingMessage, RetryableSendError


class FileBackend(BaseBackend):
    def send_messages(self, messages: list[OutgoingMessage]):
        directory = Path(conf("FILE_PATH") or Path(settings.MEDIA_ROOT) / "notices-outbox")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            by_channel: dict[str, list[str]] = {}
            for m in messages:
                by_channel.setdefault(m.channel, []).append(json.dumps(
                    {"notice": m.notice_id, "to": m.to, "subject": m.subject, "body": m.body}, ensure_ascii=False))
            for channel, lines in by_channel.items():
                path = directory / f"{channel}-{timezone.localdate():%Y%m%d}.jsonl"
                with path.open("a", encoding="utf-8") as fh:
                    fh.write("\n".join(lines) + "\n")
        except OSError as exc:
            raise RetryableSendError(f"file backend: {exc}") from exc
        return super().send_messages(messages)

    def send(self, message: OutgoingMessage) -> str:
        return f"file-{message.notice_id}"
