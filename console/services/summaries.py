"""Fill the console's summary tables for an explicit business date (never the wall clock).

Each refresh is a few set-based statements over the big tables, bounded by the date window it covers,
and re-runnable: the same date twice gives the same rows. Console pages read only these small tables
(plus small, indexed, filtered reads such as today's batches or the open exception queue).
"""

from __future__ import annotations

import time
from datetime import date, timedelta

from django.db import connection, transaction

from console.models import SummaryRefresh
from servicing.sql import execute as _exec

BUCKETS = ("M0", "M1", "M2", "M3", "M3+", "closed")
BUCKET_SQL = """CASE WHEN l.status IN ('settled', 'written_off') THEN 5
                     WHEN l.dpd = 0 THEN 0 WHEN l.dpd <= 30 THEN 1 WHEN l.dpd <= 60 THEN 2
                     WHEN l.dpd <= 90 THEN 3 ELSE 4 END"""
DEBIT_WINDOW_DAYS = 30
MANDATE_WINDOW_DAYS = 60


def month_start(d: date) -> date:
    return d.replace(day=1)


def previous_month(m: date) -> date:
    return (m - timedelta(days=1)).replace(day=1)


def table_exists(table: str) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        return bool(cur.fetchone()[0])


def _mark(name: str, as_of: date, started: float, **stats) -> dict:
    seconds = round(time.perf_counter() - started, 3)
    SummaryRefresh.objects.update_or_create(name=name, defaults={"as_of": as_of, "seconds": seconds, "stats": stats})
    return {"summary": name, "as_of": as_of.isoformat(), "seconds": seconds, **stats}


@transaction.atomic
def refresh_dpd(as_of: date) -> dict:
    """Snapshot every loan's bucket for as_of's month, then the month's bucket totals and roll rates.

    Call it after the business day for `as_of` has run (loan.dpd is as of that day). The last refresh of
    a month stands as that month's end position, which the next month's roll rates compare against.
    """
    started = time.perf_counter()
    m = month_start(as_of)
    prev = previous_month(m)
    snap = _exec(f"""
        INSERT INTO console_loanbucketmonth (month, loan_id, bucket, principal)
        SELECT %(m)s, l.id, {BUCKET_SQL}, COALESCE(p.principal, 0)
          FROM servicing_loan l
          LEFT JOIN (SELECT loan_id, SUM(principal_due - principal_paid - principal_waived) AS principal
                       FROM servicing_instalment WHERE status <> 'superseded' GROUP BY loan_id) p
            ON p.loan_id = l.id
         WHERE l.disbursed_on <= %(d)s
        ON CONFLICT (month, loan_id) DO UPDATE SET bucket = EXCLUDED.bucket, principal = EXCLUDED.principal
    """, {"m": m, "d": as_of})
    _exec("DELETE FROM console_dpdbucketmonth WHERE month = %(m)s", {"m": m})
    _exec("""
        INSERT INTO console_dpdbucketmonth (month, bucket, loans, principal, refreshed_at)
        SELECT %(m)s, (ARRAY['M0','M1','M2','M3','M3+','closed'])[bucket + 1], COUNT(*), SUM(principal), now()
          FROM console_loanbucketmonth WHERE month = %(m)s GROUP BY bucket
    """, {"m": m})
    _exec("DELETE FROM console_rollratemonth WHERE month = %(m)s", {"m": m})
    rolls = _exec("""
        INSERT INTO console_rollratemonth (month, from_bucket, to_bucket, loans, refreshed_at)
        SELECT %(m)s, (ARRAY['M0','M1','M2','M3','M3+','closed'])[a.bucket + 1],
               (ARRAY['M0','M1','M2','M3','M3+','closed'])[b.bucket + 1], COUNT(*), now()
          FROM console_loanbucketmonth a
          JOIN console_loanbucketmonth b ON b.loan_id = a.loan_id AND b.month = %(m)s
         WHERE a.month = %(prev)s AND a.bucket < 5
         GROUP BY a.bucket, b.bucket
    """, {"m": m, "prev": prev})
    return _mark("dpd", as_of, started, loans=snap, roll_pairs=rolls)


@transaction.atomic
def refresh_mandate_cancellations(as_of: date, days: int = MANDATE_WINDOW_DAYS) -> dict:
    """Cancellations per day (Asia/Shanghai) and cause over the `days` ending on as_of."""
    started = time.perf_counter()
    start = as_of - timedelta(days=days - 1)
    _exec("DELETE FROM console_mandatecancellationday WHERE day BETWEEN %(s)s AND %(e)s", {"s": start, "e": as_of})
    n = _exec("""
        INSERT INTO console_mandatecancellationday (day, cause, cancellations, refreshed_at)
        SELECT (cancelled_at AT TIME ZONE 'Asia/Shanghai')::date AS day, cancel_cause, COUNT(*), now()
          FROM servicing_mandate
         WHERE status = 'cancelled'
           AND cancelled_at >= (%(s)s::timestamp AT TIME ZONE 'Asia/Shanghai')
           AND cancelled_at < ((%(e)s::date + 1)::timestamp AT TIME ZONE 'Asia/Shanghai')
         GROUP BY 1, 2
    """, {"s": start, "e": as_of})
    return _mark("mandate_cancellations", as_of, started, rows=n)


@transaction.atomic
def refresh_debit_runs(as_of: date, days: int = DEBIT_WINDOW_DAYS) -> dict:
    """Debits per business date, channel, bank, status and result category over the window."""
    from console.models import DebitRunDay

    started = time.perf_counter()
    if not table_exists("servicing_debit"):
        return _mark("debit_runs", as_of, started, pending="servicing.Debit not migrated")
    start = as_of - timedelta(days=days - 1)
    DebitRunDay.objects.filter(day__range=(start, as_of)).delete()
    n = _exec("""
        INSERT INTO console_debitrunday (day, channel, bank_code, status, category, debits, amount, refreshed_at)
        SELECT b.business_date, c.code, m.bank_code, d.status, d.category, COUNT(*), SUM(d.amount), now()
          FROM servicing_debitbatch b
          JOIN servicing_channel c ON c.id = b.channel_id
          JOIN servicing_debit d ON d.batch_id = b.id
          JOIN servicing_mandate m ON m.id = d.mandate_id
         WHERE b.business_date BETWEEN %(s)s AND %(e)s
         GROUP BY 1, 2, 3, 4, 5
    """, {"s": start, "e": as_of})
    return _mark("debit_runs", as_of, started, rows=n)


def refresh_all(as_of: date) -> dict:
    """Every summary the console reads, for one business date (the scheduled task calls this)."""
    return {"dpd": refresh_dpd(as_of), "mandate_cancellations": refresh_mandate_cancellations(as_of),
            "debit_runs": refresh_debit_runs(as_of)}
