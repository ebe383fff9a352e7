"""The borrower's inbox: marking messages read (only the owner's own messages)."""

from __future__ import annotations

from django.utils import timezone

from notices.models import InboxMessage


def mark_read(*, borrower, message_ids: list[int]) -> int:
    return InboxMessage.objects.filter(borrower=borrower, pk__in=message_ids, read_at__isnull=True).update(
        read_at=timezone.now())
