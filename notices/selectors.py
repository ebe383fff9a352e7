"""Reads for other apps, commands and pages. No writes here."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models.functions import Coalesce

from notices.models import CertificateStatus, InboxMessage, Notice, NoticeStatus, SettlementCertificate


def certificate_summary(loan) -> dict | None:
    """The loan's current settlement certificate for loan_status --json (contracts.md)."""
    cert = (SettlementCertificate.objects.filter(loan=loan).exclude(status=CertificateStatus.SUPERSEDED)
            .only("number", "verification_code").first())
    if cert is None:
        return None
    from notices.services.certificates import verify_path

    return {"number": cert.number, "verification_code": cert.verification_code,
            "verify_url": verify_path(cert.verification_code)}


def certificate_by_code(code: str) -> SettlementCertificate | None:
    code = (code or "").strip().upper()
    if not code or len(code) > 20:
        return None
    return SettlementCertificate.objects.filter(verification_code=code).first()


def notice_log(loan) -> list[dict]:
    """What the borrower was told about this loan, oldest first (notice_log, contracts.md)."""
    rows = (Notice.objects.filter(loan=loan).order_by("created_at", "id")
            .values("event", "channel", "status", "scheduled_for", "sent_at", "last_error"))
    tz = ZoneInfo(settings.TIME_ZONE)
    out = []
    for r in rows:
        item = {"event": r["event"], "channel": r["channel"], "status": r["status"],
                "scheduled_for": r["scheduled_for"].astimezone(tz).isoformat(),
                "sent_at": r["sent_at"].astimezone(tz).isoformat() if r["sent_at"] else None}
        if r["last_error"]:
            item["reason"] = r["last_error"]
        out.append(item)
    return out


def collection_message_count(borrower_id: int, start: date, end: date | None = None) -> int:
    """Collection messages to a borrower on the local days start..end (inclusive), for the contact caps.

    Counts what was sent or is still going out (queued/sending), by its send time; failed and suppressed
    messages never reached the borrower and do not count. Collections calls it per day and per 7 days.
    """
    tz = ZoneInfo(settings.TIME_ZONE)
    lo = datetime.combine(start, time(0), tzinfo=tz)
    hi = datetime.combine((end or start) + timedelta(days=1), time(0), tzinfo=tz)
    return (Notice.objects.filter(borrower_id=borrower_id, collection=True,
                                  status__in=[NoticeStatus.QUEUED, NoticeStatus.SENDING, NoticeStatus.SENT])
            .annotate(at=Coalesce("sent_at", "scheduled_for")).filter(at__gte=lo, at__lt=hi).count())


def collection_message_counts(borrower_id: int, on_date: date) -> dict:
    """{"day": n, "week": m}: the day itself and the 7 days ending on it."""
    return {"day": collection_message_count(borrower_id, on_date),
            "week": collection_message_count(borrower_id, on_date - timedelta(days=6), on_date)}


def inbox(borrower, *, unread_only: bool = False):
    qs = InboxMessage.objects.filter(borrower=borrower)
    return qs.filter(read_at__isnull=True) if unread_only else qs


def unread_count(borrower) -> int:
    return InboxMessage.objects.filter(borrower=borrower, read_at__isnull=True).count()
