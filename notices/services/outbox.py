"""Writing outbox rows and waking the dispatcher once the causing transaction has committed."""

from __future__ import annotations

import logging
from datetime import date, datetime

from django.db import connection, transaction

from notices.catalog import EventSpec
from notices.conf import conf
from notices.models import Channel, ChannelPreference, Notice, NoticeStatus

from .rules import next_allowed_time

logger = logging.getLogger(__name__)


class NoticeError(ValueError):
    """A notice that cannot be queued as asked; the message says what is wrong."""


def dedupe_key(event: str, object_type: str, object_id, on_date: date, channel: str) -> str:
    return f"{event}:{object_type}:{object_id}:{on_date.isoformat()}:{channel}"


def opted_out_channels(borrower_id: int) -> set[str]:
    return set(ChannelPreference.objects.filter(borrower_id=borrower_id, opted_out=True)
               .values_list("channel", flat=True))


def queue(*, spec: EventSpec, borrower, loan, object_type: str, object_id, on_date: date, channels: list[str],
          context: dict, now: datetime, collection: bool, cause_at: datetime | None = None) -> list[Notice]:
    """Insert one row per channel (skipping existing dedupe keys); suppressed where the borrower opted out."""
    bad = [c for c in channels if c not in Channel.values]
    if bad:
        raise NoticeError(f"channels: {', '.join(bad)} not one of {', '.join(Channel.values)}")
    blocked = set() if spec.mandatory else opted_out_channels(borrower.pk) - {Channel.IN_APP}
    scheduled = next_allowed_time(now)
    language = borrower.language if borrower.language in ("zh-hans", "en") else "zh-hans"
    rows = []
    for channel in channels:
        suppressed = channel in blocked
        rows.append(Notice(
            event=spec.code, channel=channel, language=language, borrower=borrower, loan=loan,
            object_type=object_type, object_id=str(object_id), on_date=on_date,
            dedupe_key=dedupe_key(spec.code, object_type, object_id, on_date, channel),
            status=NoticeStatus.SUPPRESSED if suppressed else NoticeStatus.QUEUED,
            last_error=f"borrower opted out of {channel}" if suppressed else "",
            collection=collection, context=context, scheduled_for=scheduled, cause_at=cause_at))
    keys = [r.dedupe_key for r in rows]
    existing = set(Notice.objects.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True))
    new = [r for r in rows if r.dedupe_key not in existing]
    if not new:
        return []
    # a concurrent transaction inserting the same key waits on the unique index, then skips
    Notice.objects.bulk_create(new, ignore_conflicts=True)
    created = list(Notice.objects.filter(dedupe_key__in=[r.dedupe_key for r in new]))
    if any(n.status == NoticeStatus.QUEUED and n.scheduled_for <= now for n in created):
        wake_dispatcher()
    return created


def _enqueue_dispatch() -> None:
    if conf("SYNC_TASKS"):
        from notices.services.dispatch import dispatch_due

        dispatch_due()
        return
    from django_q.tasks import async_task

    async_task("notices.tasks.dispatch_due_notices", group="notices", task_name="notices.dispatch")


def wake_dispatcher() -> None:
    """Enqueue one dispatch after commit (once per transaction, however many notices it queued).

    A rolled-back transaction enqueues nothing; if the enqueue itself fails, the periodic schedule
    (tasks.ensure_schedules) still picks the rows up.
    """
    if connection.in_atomic_block and any(func is _enqueue_dispatch for _, func, _ in connection.run_on_commit):
        return
    transaction.on_commit(_enqueue_dispatch, robust=True)
