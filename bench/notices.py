"""Benchmark: queue 100k notices and dispatch them through the console backend (output to /dev/null).

    createdb -h 127.0.0.1 -U postgres bench_notices
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_notices PYTHONWARNINGS=ignore
    .venv/bin/python bench/notices.py [--notices 100000] [--chunk 1000] [--notify-sample 2000] [--workers 1]

1. Empties the notices tables of the bench database (created and migrated if missing; the name must start
   with ``bench``), books a handful of loans through the services.
2. ``notify()`` timed on ``--notify-sample`` events (the per-event path the payment services use).
3. ``--notices`` rows queued set-based (bulk insert, as the business day does), timed.
4. ``dispatch_due`` until the queue is empty (``--workers`` threads racing on it, each its own connection),
   with the SMS console backend writing to /dev/null. Printed: notices/s, and the share of the dispatch time
   spent in queue overhead (claim, load, render, status updates) versus inside the backend's send.
5. Checks every notice was sent exactly once.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import guard_database, setup_django  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notices", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=1000)
    ap.add_argument("--notify-sample", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--force", action="store_true", help="allow a database whose name does not start with bench")
    args = ap.parse_args()
    guard_database(args.force)
    setup_django()

    from decimal import Decimal

    from django.conf import settings
    from django.db import connection, transaction
    from django.test.utils import override_settings

    from notices.backends.console import ConsoleBackend
    from notices.models import InboxMessage, Notice, NoticeStatus
    from notices.services.dispatch import dispatch_due
    from notices.services.events import notify
    from notices.services.outbox import dedupe_key
    from notices.services.templates import ensure_default_templates
    from servicing.models import Loan, LoanProduct
    from servicing.services import reference_data
    from servicing.services.loans import book_loan, get_or_create_borrower

    tz = ZoneInfo(settings.TIME_ZONE)
    now = datetime.combine(date(2026, 3, 16), dtime(10), tzinfo=tz)
    with connection.cursor() as cur:
        cur.execute("TRUNCATE notices_inboxmessage, notices_notice RESTART IDENTITY CASCADE")
    reference_data.ensure()
    ensure_default_templates()
    loans = list(Loan.objects.filter(contract_no__startswith="BENCHN")[:10])
    for i in range(len(loans), 10):
        b = get_or_create_borrower(name=f"压测{i}", id_number=f"1101011980{i:07d}1", phone=f"1770000{i:04d}")
        loans.append(book_loan(product=LoanProduct.objects.get(code="credit_line"), borrower=b,
                               principal=Decimal("10000"), months=12, start=date(2026, 1, 10),
                               contract_no=f"BENCHN{i:04d}"))
    ctx = {"reference": "TS0", "deadline": "2026-03-31"}

    # 2. notify(): the per-event path
    t0 = time.perf_counter()
    with transaction.atomic():
        for i in range(args.notify_sample):
            notify("complaint_received", loan=loans[i % 10], obj=loans[i % 10], channels=["sms"], now=now,
                   on_date=date(2020, 1, 1) + timedelta(days=i), context=ctx)
    notify_s = time.perf_counter() - t0
    Notice.objects.all().delete()

    # 3. set-based queueing
    sample = notify("complaint_received", loan=loans[0], channels=["sms"], now=now, context=ctx)[0]
    template_ctx = sample.context
    Notice.objects.all().delete()
    t0 = time.perf_counter()
    batch = []
    for i in range(args.notices):
        loan = loans[i % 10]
        batch.append(Notice(
            event="complaint_received", channel="sms", language="zh-hans", borrower_id=loan.borrower_id, loan=loan,
            object_type="bench", object_id=str(i), on_date=date(2026, 3, 16),
            dedupe_key=dedupe_key("complaint_received", "bench", i, date(2026, 3, 16), "sms"),
            context=template_ctx, scheduled_for=now))
        if len(batch) == 5000:
            Notice.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    Notice.objects.bulk_create(batch, ignore_conflicts=True)
    queue_s = time.perf_counter() - t0

    # 4. dispatch through the console backend, output discarded
    ConsoleBackend.stream = open(os.devnull, "w")  # noqa: SIM115
    results, errors = [], []
    overrides = {**getattr(settings, "NOTICES", {}),
                 "BACKENDS": {"sms": "notices.backends.console.ConsoleBackend"}, "SYNC_TASKS": False}

    def work():
        try:
            results.append(dispatch_due(now=now, chunk=args.chunk, max_seconds=3600))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    with override_settings(NOTICES=overrides):
        t0 = time.perf_counter()
        threads = [threading.Thread(target=work) for _ in range(args.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dispatch_s = time.perf_counter() - t0
    if errors:
        sys.exit(f"bench: dispatch failed: {errors[0]!r}")

    sent = sum(r.sent for r in results)
    send_s = sum(r.seconds_send for r in results)
    worker_s = sum(r.seconds_total for r in results)
    not_sent = Notice.objects.exclude(status=NoticeStatus.SENT).count()
    print(f"notify():        {args.notify_sample:>8} notices  {notify_s:8.2f} s  "
          f"{args.notify_sample / notify_s:10.0f} notices/s")
    print(f"queue (bulk):    {args.notices:>8} notices  {queue_s:8.2f} s  {args.notices / queue_s:10.0f} notices/s")
    print(f"dispatch:        {sent:>8} sent     {dispatch_s:8.2f} s  {sent / dispatch_s:10.0f} notices/s  "
          f"({args.workers} worker(s), chunk {args.chunk})")
    print(f"time in backend send: {send_s:.2f} s of {worker_s:.2f} worker-s; "
          f"queue overhead share: {100 * (1 - send_s / worker_s):.1f} %")
    print(f"{'PASS' if sent == args.notices and not not_sent else 'FAIL'}: every notice sent exactly once "
          f"({sent} sent, {not_sent} not sent, inbox rows {InboxMessage.objects.count()})")


if __name__ == "__main__":
    main()
