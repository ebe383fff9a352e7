"""Settlement-notice timeliness: from the last payment to the first settlement notice sent.

Target: within one business day (sent by the same clock time on the next working day). Filled into
SettlementKpiDay per day of the last payment, from the small notices table (partial index on cause_at).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings

from notices.models import Notice, NoticeStatus, SettlementKpiDay


def deadline(cause_at: datetime) -> datetime:
    from servicing.services.calendar import add_working_days

    tz = ZoneInfo(settings.TIME_ZONE)
    local = cause_at.astimezone(tz)
    return datetime.combine(add_working_days(local.date(), 1), local.time(), tzinfo=tz)


def refresh_settlement_kpi(start: date, end: date) -> int:
    """Recompute the KPI rows for days start..end (inclusive); returns the number of days written."""
    tz = ZoneInfo(settings.TIME_ZONE)
    lo = datetime.combine(start, time(0), tzinfo=tz)
    hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo=tz)
    per_loan: dict[int, tuple[datetime, datetime | None]] = {}
    for loan_id, cause_at, status, sent_at in (Notice.objects.filter(event="settlement", cause_at__gte=lo, cause_at__lt=hi)
                                               .values_list("loan_id", "cause_at", "status", "sent_at")):
        first = per_loan.get(loan_id, (cause_at, None))[1]
        if status == NoticeStatus.SENT and (first is None or sent_at < first):
            first = sent_at
        per_loan[loan_id] = (cause_at, first)
    days: dict[date, dict] = {}
    d = start
    while d <= end:
        days[d] = {"settlements": 0, "sent": 0, "within": 0, "hours": []}
        d += timedelta(days=1)
    for cause_at, sent_at in per_loan.values():
        row = days[cause_at.astimezone(tz).date()]
        row["settlements"] += 1
        if sent_at is not None:
            row["sent"] += 1
            row["hours"].append(Decimal((sent_at - cause_at).total_seconds()) / 3600)
            if sent_at <= deadline(cause_at):
                row["within"] += 1
    for day, row in days.items():
        hours = row["hours"]
        SettlementKpiDay.objects.update_or_create(day=day, defaults={
            "settlements": row["settlements"], "sent": row["sent"], "within_one_business_day": row["within"],
            "avg_hours": round(sum(hours) / len(hours), 2) if hours else None,
            "max_hours": round(max(hours), 2) if hours else None})
    return len(days)
