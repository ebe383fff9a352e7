"""django-q2 entry points. Each takes ids or an explicit business date, re-checks state, and is safe to run
again (delivery is at-least-once: a SIGKILLed worker's task re-runs):

- run_business_day_task(date): every step is idempotent per date (BusinessDayRun, ON CONFLICT keys);
- debit_cutoff_task(date, channel): create_debit_batch (unique per channel and date) then export (an
  exported batch re-exports the same file); a killed run leaves either no batch (one transaction) or a
  batch that the re-run exports;
- import_results_task(path, channel): the import is once per file hash and resumes a file left
  `processing` (each chunk is one transaction; debits already final are not re-applied).
Scheduled entries take no date: they compute today's date in Asia/Shanghai once and pass it down.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from django.conf import settings
from django.utils import timezone

CUTOFF_CRON = "0 10 * * *"  # debit cut-off: batches built and exported at 10:00 Asia/Shanghai
BUSINESS_DAY_CRON = "30 22 * * *"  # end of day


def _date(value: str | date) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def today() -> date:
    """The scheduler's business date: today in Asia/Shanghai (only scheduled entry points call this)."""
    return timezone.localdate()


def run_business_day_task(business_date: str) -> dict:
    from servicing.services.business_day import run_business_day

    return run_business_day(_date(business_date))


def debit_cutoff_task(business_date: str, channel_code: str) -> dict:
    from servicing.models import Channel
    from servicing.models.debits import BatchStatus
    from servicing.services.debits.batches import create_debit_batch, export_debit_batch

    d = _date(business_date)
    channel = Channel.objects.get(code=channel_code)
    result = create_debit_batch(d, channel)
    batch = result.batch
    batch.refresh_from_db()
    if batch.status in (BatchStatus.OPEN, BatchStatus.EXPORTED):
        folder = Path(settings.MEDIA_ROOT) / "debit_files"
        return export_debit_batch(batch, folder / f"{batch.reference}.txt")
    return {"batch": batch.reference, "status": batch.status}


def import_results_task(path: str, channel_code: str, business_date: str | None = None) -> dict:
    from servicing.models import Channel
    from servicing.services.debits.results import import_debit_results

    channel = Channel.objects.get(code=channel_code)
    return import_debit_results(path, channel=channel, business_date=_date(business_date) if business_date else None)


def send_payment_receipts(payment_ids: list[int]) -> int:
    """payment_receipt for debit payments posted set-based (dedupe key makes a re-run harmless)."""
    from notices.services import events
    from servicing.models import Payment

    n = 0
    for payment in Payment.objects.filter(pk__in=payment_ids).select_related("loan"):
        events.payment_received(payment)
        n += 1
    return n


def scheduled_cutoff() -> list[dict]:
    from servicing.models import Channel

    d = today().isoformat()
    return [debit_cutoff_task(d, code) for code in
            Channel.objects.filter(is_active=True, kind="bank").values_list("code", flat=True)]


def scheduled_business_day() -> dict:
    return run_business_day_task(today().isoformat())


def ensure_schedules() -> list[str]:
    """Create (or update) the django-q2 Schedule rows. Idempotent."""
    from django_q.models import Schedule

    wanted = [
        ("repaydesk.debit_cutoff", "servicing.tasks.scheduled_cutoff", CUTOFF_CRON),
        ("repaydesk.business_day", "servicing.tasks.scheduled_business_day", BUSINESS_DAY_CRON),
    ]
    names = []
    for name, func, cron in wanted:
        Schedule.objects.update_or_create(name=name, defaults={
            "func": func, "schedule_type": Schedule.CRON, "cron": cron, "repeats": -1})
        names.append(name)
    return names
