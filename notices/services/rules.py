"""When a message may go out: quiet hours (22:00–08:00 Asia/Shanghai) and retry back-off."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings

from notices.conf import business, conf


def _quiet() -> tuple[int, int]:
    start, end = business("QUIET_HOURS", (22, 8))
    return int(start), int(end)


def in_quiet_hours(when: datetime) -> bool:
    start, end = _quiet()
    hour = when.astimezone(ZoneInfo(settings.TIME_ZONE)).hour
    return hour >= start or hour < end


def next_allowed_time(when: datetime) -> datetime:
    """`when` itself outside quiet hours, else the next 08:00 local (22:30 → 08:00 the next morning)."""
    tz = ZoneInfo(settings.TIME_ZONE)
    local = when.astimezone(tz)
    start, end = _quiet()
    if local.hour >= start:
        day = local.date() + timedelta(days=1)
    elif local.hour < end:
        day = local.date()
    else:
        return when
    return datetime.combine(day, time(end), tzinfo=tz)


def backoff(attempts: int) -> timedelta:
    """Delay before attempt `attempts + 1`."""
    steps = conf("BACKOFF_SECONDS")
    return timedelta(seconds=steps[min(max(attempts, 1), len(steps)) - 1])
