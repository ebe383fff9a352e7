"""Benchmark: build and export the debit batch for N due instalments (target: 1M in ≤ 30 s).

    createdb -h 127.0.0.1 -U postgres bench_debits     # or let the benchmark create it
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_debits PYTHONWARNINGS=ignore
    .venv/bin/python bench/debit_batch.py --loans 100000            # 100k: a minute or two
    .venv/bin/python bench/debit_batch.py --loans 1000000           # 1M: the real figure
    .venv/bin/python bench/debit_batch.py --loans 1000000 --reuse   # again on the same loans (no generating)

REPAYDESK_DEBIT_CHUNK (loan ids per chunk, default 50,000) and REPAYDESK_DEBIT_WORKERS (chunks at a time,
default 2) are the service's own settings.

1. Empties the servicing tables and generates N loans set-based (INSERT … SELECT generate_series, triggers
   off, secondary indexes rebuilt after): borrowers, two-instalment loans, the first due on --date (billed), an active
   mandate on the std channel each, the disbursement and billing entries (verify_books holds).
2. Baseline: a naive per-loan ORM loop (load the loan's open instalments and mandate, create the Debit with
   .create()) over --naive-sample loans inside a transaction that is rolled back; extrapolated to N.
3. create_debit_batch(date, std) + export_debit_batch to a file, timed, with peak memory; how many of the
   export's row updates were HOT, and the load average (the machine is shared: figures are only comparable
   at a similar load).
Prints rows, seconds, rows/s, peak memory, the baseline and the ratio, and PASS/FAIL against ≤ 30 s at 1M.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

TABLES = [
    "servicing_reconciliationexception", "servicing_debitattempt", "servicing_retrystate", "servicing_debitskip",
    "servicing_misseddebitexception", "servicing_preduewarning", "servicing_incidentloan", "servicing_incident",
    "servicing_gatewaypayment", "servicing_debit", "servicing_debitbatch", "servicing_resultfile",
    "servicing_allocation", "servicing_payment", "servicing_journalline", "servicing_journalentry",
    "servicing_instalment", "servicing_instalmentevent", "servicing_mandate", "servicing_mandateevent",
    "servicing_loan", "servicing_loanevent", "servicing_borrower", "servicing_businessdayrun",
    "servicing_auditlog", "pghistory_context", "notices_notice",  # notices: no FK for CASCADE to follow
]
LOAD = ["servicing_borrower", "servicing_loan", "servicing_instalment", "servicing_mandate",
        "servicing_journalentry", "servicing_journalline"]


def generate(n: int, d: date, maturing: int = 0) -> dict:
    """N loans of 2 instalments each (the first due on d and billed, the second a month later), with an active std
    mandate. Set-based. `maturing`: percent of the loans whose instalment due on d is their last (a cohort
    maturing: its principal is the whole loan's, and paying it pays the loan off)."""
    from django.db import transaction

    from servicing.models import Channel, LoanProduct
    from servicing.services import reference_data

    reference_data.ensure()
    channel = Channel.objects.get(code="std")
    product = LoanProduct.objects.get(code="credit_line")
    start = d - timedelta(days=30)
    p = {"n": n, "d": d, "d2": d + timedelta(days=31), "start": start, "ch": channel.pk, "prod": product.pk,
         "m": maturing}
    with transaction.atomic(), common.raw_cursor() as cur:
        common.truncate(cur, TABLES)
        with common.bulk_load(cur, LOAD):
            cur.execute("""INSERT INTO servicing_borrower (id, name, id_number, phone, email, language, created_at)
                           SELECT g, '借款人' || g, '1' || lpad(g::text, 16, '0') || 'X', '139' || lpad(g::text, 8, '0'),
                                  '', 'zh-hans', now() FROM generate_series(1, %(n)s) g""", p)
            cur.execute("""INSERT INTO servicing_loan (id, contract_no, product_id, borrower_id, principal,
                               annual_rate_pct, fee_rate_pct, schedule_method, term_months, disbursed_on, repayment_day,
                               status, dpd, credit_balance, created_at)
                           SELECT g, 'HTB' || lpad(g::text, 9, '0'), %(prod)s, g, 1000 + (g %% 97) * 10, 14.4, 0,
                                  'equal_instalment', CASE WHEN g %% 100 < %(m)s THEN 1 ELSE 2 END, %(start)s, extract(day FROM %(d)s::date), 'active', 0, 0, now()
                             FROM generate_series(1, %(n)s) g""", p)
            cur.execute("""INSERT INTO servicing_instalment (id, loan_id, seq, period_start, due_date, principal_due,
                               interest_due, fee_due, penalty_accrued, compound_accrued, principal_paid, interest_paid,
                               fee_paid, penalty_paid, compound_paid, principal_waived, interest_waived, fee_waived,
                               penalty_waived, compound_waived, billed, status)
                           SELECT g, g, 1, %(start)s, %(d)s,
                                  CASE WHEN g %% 100 < %(m)s THEN 1000 + (g %% 97) * 10 ELSE 500 + (g %% 97) * 5 END,
                                  12.00 + (g %% 7), 0, 0, 0, 0, 0,
                                  0, 0, 0, 0, 0, 0, 0, 0, true, 'pending' FROM generate_series(1, %(n)s) g
                           UNION ALL
                           SELECT %(n)s + g, g, 2, %(d)s, %(d2)s, 500 + (g %% 97) * 5, 6.00 + (g %% 7), 0, 0, 0, 0, 0,
                                  0, 0, 0, 0, 0, 0, 0, 0, false, 'pending' FROM generate_series(1, %(n)s) g
                            WHERE g %% 100 >= %(m)s""", p)
            cur.execute("""INSERT INTO servicing_mandate (agreement_no, borrower_id, loan_id, channel_id, account_no,
                               account_name, bank_code, status, signed_at, activated_at, suspend_reason, cancel_cause,
                               cancel_reason)
                           SELECT 'MDB' || lpad(g::text, 9, '0'), g, g, %(ch)s, '6222' || lpad(g::text, 12, '0'),
                                  '借款人' || g, 'ICBC', 'active', now(), now(), '', '', ''
                             FROM generate_series(1, %(n)s) g""", p)
            cur.execute("""INSERT INTO servicing_journalentry (id, kind, loan_id, value_date, idempotency_key, memo,
                               created_at)
                           SELECT g, 'disbursement', g, %(start)s, 'disbursement:' || g, '', now()
                             FROM generate_series(1, %(n)s) g
                           UNION ALL
                           SELECT %(n)s + g, 'billing', g, %(d)s, 'billing:' || g, '', now()
                             FROM generate_series(1, %(n)s) g""", p)
            cur.execute("""INSERT INTO servicing_journalline (entry_id, loan_id, account, amount)
                           SELECT g, g, x.a, x.v * (1000 + (g %% 97) * 10) FROM generate_series(1, %(n)s) g,
                                  (VALUES ('principal_receivable', 1), ('disbursement_clearing', -1)) x(a, v)
                           UNION ALL
                           SELECT %(n)s + g, g, x.a, x.v * (12.00 + (g %% 7)) FROM generate_series(1, %(n)s) g,
                                  (VALUES ('interest_receivable', 1), ('interest_income', -1)) x(a, v)""", p)
        for t, col in (("servicing_borrower", "id"), ("servicing_loan", "id"), ("servicing_instalment", "id"),
                       ("servicing_journalentry", "id")):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{t}', '{col}'), (SELECT MAX({col}) FROM {t}))")
    with common.raw_cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    return {"channel": channel, "product": product}


def exported_batch(n: int, d: date, maturing: int = 0) -> tuple[dict, object, Path]:
    """The start of the benchmarks that answer a batch: N generated loans (timed as "generate"), their std batch
    built and exported into a new temporary folder, which also becomes MEDIA_ROOT. Returns (generate's context,
    the batch, the folder)."""
    from django.conf import settings

    from servicing.services.debits.batches import create_debit_batch, export_debit_batch

    with common.measure("generate"):
        ctx = generate(n, d, maturing=maturing)
    tmp = Path(tempfile.mkdtemp())
    settings.MEDIA_ROOT = tmp / "media"
    batch = create_debit_batch(d, ctx["channel"]).batch
    export_debit_batch(batch, tmp / "batch.csv")
    return ctx, batch, tmp


DEBIT_SIDE = ["servicing_reconciliationexception", "servicing_debitattempt", "servicing_retrystate",
              "servicing_debitskip", "servicing_misseddebitexception", "servicing_incidentloan", "servicing_incident",
              "servicing_debit", "servicing_debitbatch", "servicing_auditlog"]


def reuse(n: int, d: date) -> dict | None:
    """--reuse: the N loans of an earlier run are there (same date): empty only the debit side, skip generating."""
    from servicing.models import Channel, Instalment, Loan, LoanProduct

    if Loan.objects.count() != n or not Instalment.objects.filter(loan_id=n, seq=1, due_date=d).exists():
        return None
    with common.raw_cursor() as cur:
        common.truncate(cur, DEBIT_SIDE)
        cur.execute("CHECKPOINT")  # the same start as after generating: no dirty pages of an earlier run
        cur.execute("VACUUM ANALYZE servicing_loan, servicing_mandate, servicing_instalment")
    return {"channel": Channel.objects.get(code="std"), "product": LoanProduct.objects.get(code="credit_line")}


def naive_batch(sample: int, d: date, channel) -> float:
    """Per-loan ORM: what a straightforward implementation does; rolled back."""
    import time

    from django.db import transaction

    from servicing.models import Debit, DebitBatch, Instalment, Loan

    t0 = time.perf_counter()
    with transaction.atomic():
        batch = DebitBatch.objects.create(reference="NAIVE", channel=channel, business_date=d + timedelta(days=999))
        for n, loan in enumerate(Loan.objects.filter(status__in=["active", "overdue"])[:sample]):
            mandate = loan.mandates.filter(status="active", channel=channel).first()
            if mandate is None:
                continue
            due = list(Instalment.objects.filter(loan=loan, due_date__lte=d,
                                                 status__in=["pending", "partially_paid", "overdue"]))
            if not due or Debit.objects.filter(loan=loan, status__in=["planned", "submitted", "unknown"]).exists():
                continue
            amount = sum(i.total_outstanding for i in due)
            Debit.objects.create(reference=f"NAIVE{n}", batch=batch, loan=loan, mandate=mandate, instalment=due[-1],
                                 due_date=d + timedelta(days=999), amount=amount)
        elapsed = time.perf_counter() - t0
        transaction.set_rollback(True)
    return elapsed


def updates() -> tuple[int, int]:
    """Row updates of servicing_debit so far, and how many of them were HOT (statistics are flushed at commit)."""
    import time

    time.sleep(1.1)  # a backend reports its table statistics at most once a second
    with common.raw_cursor() as cur:
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'servicing_debit'")
        return cur.fetchone()


def main(argv=None) -> int:
    ap = common.cohort_parser(__doc__, loans=100000, naive_sample=2000)
    ap.add_argument("--reuse", action="store_true",
                    help="keep the loans of an earlier run with the same --loans and --date (only the debit side is "
                         "emptied); generates them when they are not there")
    args = ap.parse_args(argv)
    common.setup_django()
    common.guard_database(args.force)
    n, d = args.loans, args.date
    ctx = reuse(n, d) if args.reuse else None
    if ctx is None:
        print(f"generating {n:,} due loans …")
        with common.measure("generate"):
            ctx = generate(n, d)
    else:
        print(f"reusing the {n:,} due loans already generated")
    from servicing.services.debits.batches import create_debit_batch, export_debit_batch

    naive_s = naive_batch(args.naive_sample, d, ctx["channel"])
    naive_total = naive_s / args.naive_sample * n
    print(f"  baseline: {1000 * naive_s / args.naive_sample:.2f} ms/loan -> {naive_total:,.0f} s extrapolated")
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        with common.measure("create_debit_batch", trace_memory=True) as build:
            result = create_debit_batch(d, ctx["channel"])
        hot0 = updates()
        with common.measure("export_debit_batch", trace_memory=True) as export:
            out = export_debit_batch(result.batch, Path(tmp) / "batch.csv")
        size = (Path(tmp) / "batch.csv").stat().st_size
    total = build.seconds + export.seconds
    hot = [b - a for a, b in zip(hot0, updates(), strict=True)]
    load = [max(a, b) for a, b in zip(load, os.getloadavg(), strict=True)]
    print(f"  batch built in {result.batch.stats.get('chunks', 1)} chunks, "
          f"{os.environ.get('REPAYDESK_DEBIT_WORKERS') or 2} at a time; export: {hot[1]:,} of {hot[0]:,} row "
          f"updates HOT (no index entry written); load average (1/5/15 min, max of start and end): "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    table = common.ResultTable(f"debit batch for {n:,} due instalments ({common.machine_info()})")
    table.add(common.Row("create_debit_batch (chunks of INSERT … SELECT)", result.count, build.seconds, build.peak_memory))
    table.add(common.Row("export_debit_batch (file)", out["count"], export.seconds, export.peak_memory,
                         note=f"{size / 1e6:.1f} MB"))
    table.add(common.Row("build + export", result.count, total, "-", baseline_seconds=naive_total,
                         note=f"baseline: per-loan ORM on {args.naive_sample:,}, extrapolated"))
    print(table.render())
    print(table.markdown())
    per_million = total / n * 1_000_000
    common.verdict(result.count == n, f"every due loan in the batch ({result.count:,} of {n:,})")
    common.verdict(per_million <= 30, f"1M due instalments in ≤ 30 s (measured {total:.1f} s for {n:,}, "
                                      f"{per_million:.1f} s per 1M)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
