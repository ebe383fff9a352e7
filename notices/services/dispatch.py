"""Sending due notices in chunks: claim (conditional update, SKIP LOCKED), render, send, record.

A claim moves rows queued → sending with a fresh token in one statement, so two workers never hold the
same notice; every later update is guarded by status = sending AND that token. A worker that dies
mid-chunk leaves rows `sending`; after the lease they are re-queued (at-least-once: the SMS adapter
passes the notice id as the provider's idempotency key and the inbox is one row per notice).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from notices.backends import OutgoingMessage, PermanentSendError, SendResult, get_backend
from notices.backends.base import SendError
from notices.conf import conf
from notices.models import Notice, NoticeStatus, NoticeTemplate

from .rules import backoff, in_quiet_hours, next_allowed_time
from .templating import TemplateError, render

logger = logging.getLogger(__name__)

CLAIM_SQL = """
UPDATE notices_notice n
   SET status = 'sending', claim_token = %(token)s, claimed_at = %(now)s, attempts = n.attempts + 1
 WHERE n.id IN (SELECT id FROM notices_notice
                 WHERE status = 'queued' AND scheduled_for <= %(now)s
                 ORDER BY scheduled_for, id LIMIT %(limit)s
                 FOR UPDATE SKIP LOCKED)
   AND n.status = 'queued'
RETURNING n.id
"""

SENT_SQL = """
UPDATE notices_notice n
   SET status = 'sent', sent_at = %(now)s, subject = v.subject, body = v.body, provider_ref = v.ref,
       last_error = '', claim_token = NULL
  FROM unnest(%(ids)s::bigint[], %(subjects)s::text[], %(bodies)s::text[], %(refs)s::text[])
       AS v(id, subject, body, ref)
 WHERE n.id = v.id AND n.status = 'sending' AND n.claim_token = %(token)s
"""


@dataclass
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0
    quiet: bool = False
    seconds_send: float = 0.0
    seconds_total: float = 0.0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"claimed": self.claimed, "sent": self.sent, "retried": self.retried, "failed": self.failed,
                "released": self.released, "quiet": self.quiet, "seconds_send": round(self.seconds_send, 3),
                "seconds_total": round(self.seconds_total, 3), "errors": self.errors[:10]}


class _Templates:
    """Templates of one chunk, loaded once per (event, channel, language); zh-hans is the fallback."""

    def __init__(self):
        self.cache: dict[tuple[str, str, str], NoticeTemplate | None] = {}

    def get(self, event: str, channel: str, language: str) -> NoticeTemplate:
        for lang in (language, "zh-hans"):
            key = (event, channel, lang)
            if key not in self.cache:
                self.cache[key] = NoticeTemplate.objects.filter(event=event, channel=channel, language=lang).first()
            if self.cache[key] is not None:
                return self.cache[key]
        raise TemplateError(f"no template for {event} × {channel} ({language} or zh-hans): add one in the admin")


def release_stale_claims(now: datetime | None = None) -> int:
    """Re-queue notices left `sending` by a dead worker (their attempt stays counted)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=conf("CLAIM_LEASE_SECONDS"))
    return Notice.objects.filter(status=NoticeStatus.SENDING, claimed_at__lt=cutoff).update(
        status=NoticeStatus.QUEUED, claim_token=None, last_error="claim expired (worker lost); re-queued")


def claim(now: datetime, limit: int) -> tuple[uuid.UUID, list[int]]:
    token = uuid.uuid4()
    with connection.cursor() as cur:
        cur.execute(CLAIM_SQL, {"token": token, "now": now, "limit": limit})
        ids = [row[0] for row in cur.fetchall()]
    return token, ids


def _fail(notice_id: int, token: uuid.UUID, attempts: int, error: Exception, now: datetime, stats: DispatchStats) -> None:
    reason = str(error)[:500] or type(error).__name__
    retry = getattr(error, "retryable", False) and attempts < conf("MAX_ATTEMPTS")
    if retry:
        updated = Notice.objects.filter(pk=notice_id, status=NoticeStatus.SENDING, claim_token=token).update(
            status=NoticeStatus.QUEUED, claim_token=None, last_error=reason,
            scheduled_for=next_allowed_time(now + backoff(attempts)))
        stats.retried += updated
    else:
        if getattr(error, "retryable", False):
            reason = f"gave up after {attempts} attempts: {reason}"[:500]
        updated = Notice.objects.filter(pk=notice_id, status=NoticeStatus.SENDING, claim_token=token).update(
            status=NoticeStatus.FAILED, claim_token=None, last_error=reason)
        stats.failed += updated
    stats.errors.append(f"#{notice_id}: {reason}")


def send_claimed(token: uuid.UUID, ids: list[int], now: datetime, stats: DispatchStats) -> None:
    rows = list(Notice.objects.filter(pk__in=ids, claim_token=token).values(
        "id", "event", "channel", "language", "borrower_id", "borrower__phone", "borrower__email", "context",
        "attempts").order_by("scheduled_for", "id"))  # first in, first out
    attempts = {r["id"]: r["attempts"] for r in rows}
    templates = _Templates()
    by_channel: dict[str, list[OutgoingMessage]] = {}
    for r in rows:
        try:
            tpl = templates.get(r["event"], r["channel"], r["language"])
            subject = render(tpl.subject, r["context"])
            body = render(tpl.body, r["context"])
        except TemplateError as exc:
            _fail(r["id"], token, r["attempts"], PermanentSendError(f"template: {exc}"), now, stats)
            continue
        to = {"sms": r["borrower__phone"], "email": r["borrower__email"]}.get(r["channel"], str(r["borrower_id"]))
        by_channel.setdefault(r["channel"], []).append(OutgoingMessage(
            notice_id=r["id"], channel=r["channel"], borrower_id=r["borrower_id"], to=to, subject=subject,
            body=body, language=r["language"]))
    for channel, messages in by_channel.items():
        t0 = time.perf_counter()
        try:
            results = get_backend(channel).send_messages(messages)
        except SendError as exc:
            results = [SendResult(m.notice_id, error=exc) for m in messages]
        except Exception as exc:  # noqa: BLE001 — a backend bug must not lose the chunk: retry later
            logger.exception("notices: backend %s crashed", channel)
            err = SendError(f"{channel} backend error: {type(exc).__name__}: {exc}")
            err.retryable = True
            results = [SendResult(m.notice_id, error=err) for m in messages]
        stats.seconds_send += time.perf_counter() - t0
        by_id = {m.notice_id: m for m in messages}
        ok = [r for r in results if r.ok]
        if ok:
            with connection.cursor() as cur:
                cur.execute(SENT_SQL, {
                    "now": now, "token": token, "ids": [r.notice_id for r in ok],
                    "subjects": [by_id[r.notice_id].subject[:200] for r in ok],
                    "bodies": [by_id[r.notice_id].body for r in ok],
                    "refs": [(r.provider_ref or "")[:120] for r in ok]})
                stats.sent += cur.rowcount
        for r in results:
            if not r.ok:
                _fail(r.notice_id, token, attempts[r.notice_id], r.error, now, stats)


def dispatch_due(*, now: datetime | None = None, chunk: int | None = None, max_seconds: float | None = None,
                 max_chunks: int | None = None) -> DispatchStats:
    """Send what is due at `now` (default: the wall clock), chunk by chunk, until nothing is left or the
    time budget is spent. Nothing goes out in quiet hours. Safe to run twice or in parallel."""
    started = time.perf_counter()
    now_fixed = now
    chunk = chunk or conf("CHUNK")
    max_seconds = conf("DISPATCH_SECONDS") if max_seconds is None else max_seconds
    stats = DispatchStats()
    stats.released = release_stale_claims(now)
    rounds = 0
    while True:
        current = now_fixed or timezone.now()
        if in_quiet_hours(current):
            stats.quiet = True
            break
        token, ids = claim(current, chunk)
        if not ids:
            break
        stats.claimed += len(ids)
        send_claimed(token, ids, current, stats)
        rounds += 1
        if (max_chunks and rounds >= max_chunks) or time.perf_counter() - started > max_seconds:
            break
    stats.seconds_total = time.perf_counter() - started
    return stats


def due_count(now: datetime | None = None) -> int:
    return Notice.objects.filter(status=NoticeStatus.QUEUED, scheduled_for__lte=now or timezone.now()).count()


def requeue(notice_ids: list[int], *, now: datetime | None = None) -> int:
    """Staff retry of failed notices: back to the queue with a fresh attempt budget."""
    return Notice.objects.filter(pk__in=notice_ids, status=NoticeStatus.FAILED).update(
        status=NoticeStatus.QUEUED, attempts=0, scheduled_for=next_allowed_time(now or timezone.now()))
