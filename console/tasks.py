"""django-q2 tasks that fill the console's summary tables (idempotent: re-running a date is harmless)."""

from __future__ import annotations

from datetime import date

from django.utils import timezone


def refresh_console_summaries(as_of: str | None = None) -> dict:
    """Scheduled task: the business date is given explicitly; the scheduler passes today in Asia/Shanghai."""
    from console.services.summaries import refresh_all

    d = date.fromisoformat(as_of) if as_of else timezone.localdate()
    return refresh_all(d)


def ensure_schedule() -> None:
    """A cron schedule every 15 minutes (keeps today's pages fresh); call from deployment or seed_demo."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="console-summaries",
        defaults={"func": "console.tasks.refresh_console_summaries", "schedule_type": Schedule.CRON,
                  "cron": "*/15 * * * *", "repeats": -1},
    )
