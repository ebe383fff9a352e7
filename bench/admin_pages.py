"""Console pages over ≥ 5M rows: p95 ≤ 150 ms per page (performance.md).

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_console
    .venv/bin/python bench/admin_pages.py --rows 5000000          # the real figure (~6-10 min to load)
    .venv/bin/python bench/admin_pages.py --rows 100000 --requests 30   # quick

Loads N rows into each big table a console page touches (borrowers, loans, instalments, mandates, debits,
reconciliation and missed-debit exceptions, collection cases, promises, complaints) with set-based
`INSERT … SELECT generate_series` (server-side, faster than COPY from a client; triggers off), runs the
summary refresh the scheduled task runs (timed), ANALYZEs, then requests every console page (and the big
admin changelists) in-process as the admin role, printing p50/p95/max and PASS/FAIL against 150 ms.
--skip-load reuses the rows already there.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import guard_database, setup_django, verdict  # noqa: E402

TARGET_MS = 150.0
AS_OF = date(2026, 3, 10)


def _default_sql(field) -> str:
    from django.db.models import NOT_PROVIDED

    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return "now()"
    if field.default is not NOT_PROVIDED:
        value = field.get_default()
        if isinstance(value, dict | list):
            return "'{}'::jsonb" if isinstance(value, dict) else "'[]'::jsonb"
        if isinstance(value, bool):
            return "true" if value else "false"
        if value is None:
            return "NULL"
        return "'" + str(value).replace("'", "''") + "'"
    if field.null:
        return "NULL"
    if field.get_internal_type() in ("CharField", "TextField", "SlugField"):
        return "''"
    raise ValueError(f"{field.model.__name__}.{field.name} needs a value")


def gen_insert(cur, model, n: int, values: dict[str, str]) -> None:
    """INSERT n rows of `model`, g = 1..n; `values` maps column → SQL expression over g."""
    cols, exprs = [], []
    for f in model._meta.concrete_fields:
        if (f.primary_key and f.column not in values) or f.generated:  # PostgreSQL computes generated ones
            continue
        cols.append(f'"{f.column}"')
        exprs.append(values.get(f.column) or _default_sql(f))
    sql = (f'INSERT INTO "{model._meta.db_table}" ({", ".join(cols)}) '
           f'SELECT {", ".join(exprs)} FROM generate_series(1, {n}) AS g')
    t = time.perf_counter()
    cur.execute(sql)
    print(f"  {model._meta.db_table:40s} {n:>10,} rows  {time.perf_counter() - t:6.1f} s", flush=True)


def load(n: int) -> None:
    from django.apps import apps
    from django.db import connection

    from servicing.models import Borrower, Channel, Instalment, Loan, LoanProduct, Mandate
    from servicing.services import reference_data

    reference_data.ensure_default_products()
    reference_data.ensure_channels()
    product = LoanProduct.objects.get(code="car").pk
    chan = Channel.objects.order_by("pk").first().pk
    M = apps.get_model
    Batch, Debit = M("servicing", "DebitBatch"), M("servicing", "Debit")
    Recon, Missed = M("servicing", "ReconciliationException"), M("servicing", "MissedDebitException")
    Case, Promise, Complaint = (M("collections_app", "CollectionCase"), M("collections_app", "PromiseToPay"),
                                M("collections_app", "Complaint"))
    big = [Borrower, Loan, Instalment, Mandate, Batch, Debit, Recon, Missed, Case, Promise, Complaint]
    with connection.cursor() as cur:
        tables = ", ".join(f'"{m._meta.db_table}"' for m in big)
        cur.execute(f"TRUNCATE {tables}, console_loanbucketmonth, console_dpdbucketmonth, console_rollratemonth, "
                    "console_mandatecancellationday, console_debitrunday RESTART IDENTITY CASCADE")
        cur.execute("SET session_replication_role = replica")  # no pghistory triggers / FK checks during load
        d0 = f"DATE '{AS_OF}'"
        gen_insert(cur, Borrower, n, {"name": "'借款人' || g", "id_number": "'9' || lpad(g::text, 17, '0')",
                                      "phone": "'1' || lpad(g::text, 10, '0')"})
        gen_insert(cur, Loan, n, {
            "id": "g", "contract_no": "'HT' || lpad(g::text, 12, '0')", "product_id": str(product),
            "borrower_id": "g", "principal": "12000", "annual_rate_pct": "8", "fee_rate_pct": "0",
            "schedule_method": "'equal_instalment'", "term_months": "12",
            "disbursed_on": f"{d0} - (g % 700)", "repayment_day": "10",
            "status": "CASE WHEN g % 20 = 0 THEN 'overdue' WHEN g % 9 = 0 THEN 'settled' ELSE 'active' END",
            "dpd": "CASE WHEN g % 20 = 0 THEN (g / 20) % 200 + 1 ELSE 0 END",
            "settled_on": f"CASE WHEN g % 20 <> 0 AND g % 9 = 0 THEN {d0} ELSE NULL END"})
        gen_insert(cur, Instalment, n, {"id": "g", "loan_id": "g", "seq": "1", "period_start": f"{d0} - 30",
                                        "due_date": f"{d0} - (g % 30)", "principal_due": "1000",
                                        "interest_due": "80", "billed": "true",
                                        "status": "CASE WHEN g % 20 = 0 THEN 'overdue' ELSE 'pending' END"})
        gen_insert(cur, Mandate, n, {
            "id": "g", "agreement_no": "'MD' || g", "borrower_id": "g", "loan_id": "g", "channel_id": str(chan),
            "account_no": "'6222' || lpad(g::text, 12, '0')", "account_name": "'借款人' || g",
            "bank_code": "(ARRAY['ICBC','CCB','ABC','BOC','CMB'])[g % 5 + 1]",
            "status": "CASE WHEN g % 50 = 0 THEN 'cancelled' ELSE 'active' END",
            "signed_at": "now() - interval '400 days'",
            "cancelled_at": f"CASE WHEN g % 50 = 0 THEN ({d0} - (g / 50) % 60)::timestamp + interval '10 hours' END",
            "cancel_cause": "CASE WHEN g % 50 = 0 THEN (ARRAY['borrower','bank','staff'])[g % 3 + 1] ELSE '' END"})
        gen_insert(cur, Batch, 30, {"id": "g", "reference": "'B' || g", "channel_id": str(chan),
                                    "business_date": f"{d0} - (30 - g)", "status": "'results_imported'"})
        gen_insert(cur, Debit, n, {
            "id": "g", "reference": "'D' || g", "batch_id": "g % 30 + 1", "loan_id": "g", "mandate_id": "g",
            "instalment_id": "g", "due_date": f"{d0} - (30 - (g % 30 + 1))", "amount": "1080",
            "status": "CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'succeeded' END",
            "category": "CASE WHEN g % 10 = 0 THEN (ARRAY['insufficient_funds','account_state','limit'])[g % 3 + 1] "
                        "ELSE '' END"})
        gen_insert(cur, Recon, n, {"id": "g", "loan_id": "g", "line_no": "NULL", "reason_code": "'mismatch'",
                                   "reason": "'金额不符'",
                                   "status": "CASE WHEN g % 10000 = 0 THEN 'open' ELSE 'resolved' END",
                                   "resolved_at": "CASE WHEN g % 10000 = 0 THEN NULL ELSE now() END"})
        gen_insert(cur, Missed, n, {"id": "g", "instalment_id": "g", "loan_id": "g",
                                    "business_date": f"{d0} - (g % 90)", "reason": "'mandate_cancelled'",
                                    "status": "CASE WHEN g % 10000 = 0 THEN 'open' ELSE 'resolved' END"})
        gen_insert(cur, Case, n, {"id": "g", "loan_id": "g", "borrower_id": "g", "opened_on": f"{d0} - (g % 300)",
                                  "status": "CASE WHEN g % 20 = 0 THEN 'open' ELSE 'closed' END",
                                  "closed_on": f"CASE WHEN g % 20 = 0 THEN NULL ELSE {d0} END",
                                  "close_reason": "CASE WHEN g % 20 = 0 THEN '' ELSE 'cured' END"})
        gen_insert(cur, Promise, n, {"id": "g", "case_id": "g", "loan_id": "g", "amount": "500",
                                     "promised_on": f"{d0} - 7", "due_date": f"{d0} - (g % 200) + 20",
                                     "status": "CASE WHEN g % 3 = 0 THEN 'pending' ELSE 'kept' END"})
        gen_insert(cur, Complaint, n, {"id": "g", "reference": "'TS' || g", "loan_id": "g", "borrower_id": "g",
                                       "subject": "'催收投诉'", "description": "'内容'",
                                       "filed_on": f"{d0} - (g % 400)", "due_on": f"{d0} - (g % 400) + 15",
                                       "status": "CASE WHEN g % 5000 = 0 THEN 'open' ELSE 'answered' END",
                                       "answered_on": "CASE WHEN g % 5000 = 0 THEN NULL ELSE DATE '2026-01-01' END",
                                       "root_cause": "CASE WHEN g % 5000 = 0 THEN '' ELSE 'other' END"})
        cur.execute("SET session_replication_role = DEFAULT")
        for m in big:
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{m._meta.db_table}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 1) FROM \"{m._meta.db_table}\"))")


def refresh() -> dict:
    from console.services import summaries

    out = {}
    # a previous month-end snapshot, so roll rates have something to compare
    for d in (date(2026, 1, 31), date(2026, 2, 28), AS_OF):
        t = time.perf_counter()
        summaries.refresh_dpd(d)
        out[f"refresh_dpd {d}"] = time.perf_counter() - t
    for name, fn in (("mandate_cancellations", summaries.refresh_mandate_cancellations),
                     ("debit_runs", summaries.refresh_debit_runs)):
        t = time.perf_counter()
        fn(AS_OF)
        out[name] = time.perf_counter() - t
    return out


def measure_pages(requests: int) -> list[tuple[str, float, float, float]]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from console.views import PAGES
    from servicing import roles

    roles.ensure_roles()
    user, _ = get_user_model().objects.get_or_create(username="bench_admin", defaults={"is_staff": True,
                                                                                       "is_superuser": True})
    client = Client()
    client.force_login(user)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    urls = [f"/admin/console/{p.slug}/?date={AS_OF}" for p in PAGES] + [
        "/admin/console/", "/admin/servicing/loan/", "/admin/servicing/mandate/", "/admin/servicing/borrower/",
        "/admin/servicing/instalment/", "/admin/console/approvalrequest/"]
    out = []
    for url in urls:
        for _ in range(3):  # warm-up
            r = client.get(url)
            assert r.status_code == 200, (url, r.status_code)
        times = []
        for _ in range(requests):
            t = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        p95 = times[max(0, int(round(0.95 * len(times))) - 1)]
        out.append((url, statistics.median(times), p95, times[-1]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--skip-refresh", action="store_true", help="reuse the summaries already filled")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    guard_database(args.force)
    setup_django()
    if not args.skip_load:
        print(f"loading {args.rows:,} rows per big table …")
        t = time.perf_counter()
        load(args.rows)
        print(f"  load total {time.perf_counter() - t:.1f} s")
    if not args.skip_refresh:
        print("summary refresh (what the scheduled task runs):")
        for name, secs in refresh().items():
            print(f"  {name:40s} {secs:7.2f} s")
    rows = measure_pages(args.requests)
    print(f"\n{'page':58s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s}")
    ok = True
    for url, p50, p95, mx in rows:
        print(f"{url:58s} {p50:8.1f} {p95:8.1f} {mx:8.1f}")
        ok &= p95 <= TARGET_MS
    verdict(ok, f"every console/admin page p95 ≤ {TARGET_MS:.0f} ms over {args.rows:,} rows per table")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
