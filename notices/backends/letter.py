"""Letter channel: renders the notice as a printable PDF for the mail room (WeasyPrint, CJK font)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.template.loader import render_to_string

from notices.conf import business, conf

from .base import BaseBackend, OutgoingMessage, RetryableSendError


class LetterBackend(BaseBackend):
    def send(self, message: OutgoingMessage) -> str:
        from weasyprint import HTML

        directory = Path(conf("LETTER_PATH") or Path(settings.MEDIA_ROOT) / "letters")
        html = render_to_string("notices/letter.html", {"m": message, "lender": business("LENDER_NAME", "")})
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"notice-{message.notice_id}.pdf"
            HTML(string=html).write_pdf(path)
        except OSError as exc:
            raise RetryableSendError(f"letter: {exc}") from exc
        return str(path)
