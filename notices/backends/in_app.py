"""In-app channel: the message lands in the borrower's self-service inbox (read/unread)."""

from __future__ import annotations

from notices.models import InboxMessage

from .base import BaseBackend, OutgoingMessage


class InAppBackend(BaseBackend):
    def send_messages(self, messages: list[OutgoingMessage]):
        # one row per notice (OneToOne): a re-run after a crash does not duplicate the inbox entry
        InboxMessage.objects.bulk_create(
            [InboxMessage(borrower_id=m.borrower_id, notice_id=m.notice_id, subject=m.subject[:200], body=m.body)
             for m in messages], ignore_conflicts=True)
        return super().send_messages(messages)

    def send(self, message: OutgoingMessage) -> str:
        return f"inbox-{message.notice_id}"
