"""Benchmark: the collections step of the business day over a generated book.

    python bench/collections_day.py --loans 100000          # minutes
    python bench/collections_day.py --loans 1000000         # the real figure

Creates (and afterwards keeps, for inspection) its own database `bench_coll` on the server of
DATABASE_URL, generates borrowers, loans and instalments with COPY (5–10 % delinquent, DPD spread over
1–120 days), then times `collections_app.services.business_day.step(d)`:
  1. first run (every delinquent loan opens a case, stages, priority, assignment, messages),
  2. re-run of the same date (must be ≤ 10 % of the first),
  3. the next day (steady state: figures move, a few stage changes, weekly messages not due),
and, as the baseline, a per-loan ORM loop doing the same case upkeep on a sample of delinquent loans.
Prints rows, seconds, rows/s, ms per loan, peak memory, the baseline and the ratio.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bench_url(base: str, name: str) -> str:
    u = urlparse(base)
    return urlunparse(u._replace(path="/" + name))


def setup_django(db: str, fresh: bool) -> None:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    u = urlparse(base)
    args = ["-h", u.hostname or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    if fresh:
        subprocess.run(["dropdb", "--if-exists", *args, db], check=True)
        subprocess.run(["createdb", *args, db], check=True)
    os.environ["DATABASE_URL"] = bench_url(base, db)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    if fresh:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(n: int, delinquent: float, d: date, seed: int = 7) -> dict:
    """Borrowers, loans and 12 instalments each, written with COPY (triggers off while loading)."""
    from django.db import connection

    from collections_app.services.cases import ensure_roles
    from servicing.models import LoanProduct
    from servicing.services import reference_data

    reference_data.ensure()
    ensure_roles()
    product = LoanProduct.objects.get(code="car")
    rng = random.Random(seed)
    t0 = time.perf_counter()
    start = d - timedelta(days=150)
    rows = {"borrowers": n, "loans": n, "instalments": 12 * n}
    n_bad = 0
    with connection.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        with cur.copy("COPY servicing_borrower (id, name, id_number, phone, email, language, created_at) FROM STDIN") as cp:
            for i in range(1, n + 1):
                cp.write_row((i, f"借款人{i}", f"{i:018d}",
                              f"1{i:010d}", "", "zh-hans", "2026-01-01T00:00:00+08:00"))
        loans = []
        for i in range(1, n + 1):
            disbursed = start - timedelta(days=rng.randrange(0, 200))
            bad = rng.random() < delinquent
            n_bad += bad
            dpd = rng.randrange(1, 121) if bad else 0
            loans.append((i, f"HT{i:012d}", product.pk, i, "12000.00", "8.0000", "0", "equal_instalment", 12,
                          disbursed, disbursed.day if disbursed.day <= 28 else 28,
                          "overdue" if bad else "active", dpd, "0.00", "2026-01-01T00:00:00+08:00"))
        with cur.copy("""COPY servicing_loan (id, contract_no, product_id, borrower_id, principal, annual_rate_pct,
                         fee_rate_pct, schedule_method, term_months, disbursed_on, repayment_day, status, dpd,
                         credit_balance, created_at) FROM STDIN""") as cp:
            for row in loans:
                cp.write_row(row)
        with cur.copy("""COPY servicing_instalment (loan_id, seq, period_start, due_date, principal_due, interest_due,
                         fee_due, penalty_accrued, compound_accrued, principal_paid, interest_paid, fee_paid,
                         penalty_paid, compound_paid, principal_waived, interest_waived, fee_waived, penalty_waived,
                         compound_waived, billed, penalty_accrued_through, status, paid_on) FROM STDIN""") as cp:
            for (lid, _c, _p, _b, _pr, _r, _f, _m, _t, disbursed, _day, status, dpd, _cb, _ca) in loans:
                oldest_unpaid = d - timedelta(days=dpd) if status == "overdue" else None
                for seq in range(1, 13):
                    due = disbursed + timedelta(days=30 * seq)
                    if oldest_unpaid is not None and seq == 1:
                        due = oldest_unpaid
                    elif oldest_unpaid is not None:
                        due = oldest_unpaid + timedelta(days=30 * (seq - 1))
                    past = due < d
                    overdue = oldest_unpaid is not None and past
                    paid = past and not overdue
                    pen = "12.34" if overdue else "0.00"
                    amt = ("1000.00", "80.00")
                    cp.write_row((lid, seq, due - timedelta(days=30), due, amt[0], amt[1], "0.00", pen, "0.00",
                                  amt[0] if paid else "0.00", amt[1] if paid else "0.00", "0.00", "0.00", "0.00",
                                  "0.00", "0.00", "0.00", "0.00", "0.00", past, d - timedelta(days=1) if overdue else None,
                                  "overdue" if overdue else ("paid" if paid else "pending"), due if paid else None))
        cur.execute("SET session_replication_role = origin")
        cur.execute("SELECT setval(pg_get_serial_sequence('servicing_borrower', 'id'), %s)", [n])
        cur.execute("SELECT setval(pg_get_serial_sequence('servicing_loan', 'id'), %s)", [n])
        cur.execute("ANALYZE servicing_borrower; ANALYZE servicing_loan; ANALYZE servicing_instalment")
    secs = time.perf_counter() - t0
    total = sum(rows.values())
    print(f"generate: {total:,} rows with COPY in {secs:.1f} s ({total / secs:,.0f} rows/s); "
          f"{n_bad:,} delinquent loans ({n_bad / n:.1%})")
    return {"delinquent": n_bad}


def collectors(k: int = 50) -> None:
    from django.contrib.auth.models import Group, User

    group = Group.objects.get(name="collector")
    for i in range(k):
        u, _ = User.objects.get_or_create(username=f"bench-collector-{i}", defaults={"is_staff": True})
        u.groups.add(group)


def timed(label: str, fn, per: int, n_loans: int) -> float:
    t0 = time.perf_counter()
    stats = fn()
    secs = time.perf_counter() - t0
    figures = {k: v for k, v in stats.items() if k != "timings"}
    print(f"{label}: {secs:.2f} s · {secs * 1000 / max(n_loans, 1):.4f} ms per book loan · "
          f"{secs * 1000 / max(per, 1):.3f} ms per delinquent loan · peak {peak_mb():.0f} MB")
    print(f"   figures: {figures}")
    print(f"   parts (s): {stats.get('timings')}")
    return secs


def orm_baseline(d: date, sample: int) -> float:
    """The naive way: per loan, ORM reads of its overdue instalments and a get_or_create/save of its case."""
    from django.db import transaction
    from django.db.models import F, Min, Sum

    from collections_app.models import CaseEvent, CollectionCase
    from servicing.domain.accrual import bucket
    from servicing.models import Loan

    ids = list(Loan.objects.filter(status="overdue").exclude(collection_cases__status__in=["open", "paused"])
               .values_list("id", flat=True)[:sample])
    t0 = time.perf_counter()
    with transaction.atomic():
        for loan in Loan.objects.filter(pk__in=ids).select_related("product", "borrower"):
            agg = loan.instalments.filter(status="overdue", due_date__lt=d).aggregate(
                oldest=Min("due_date"), p=Sum(F("principal_due") - F("principal_paid") - F("principal_waived")),
                i=Sum(F("interest_due") - F("interest_paid") - F("interest_waived")),
                pen=Sum(F("penalty_accrued") - F("penalty_paid") - F("penalty_waived")))
            dpd = (d - agg["oldest"]).days
            case, created = CollectionCase.objects.get_or_create(
                loan=loan, status="open", defaults={"borrower": loan.borrower, "opened_on": d})
            case.dpd, case.bucket = dpd, bucket(dpd)
            case.overdue_principal, case.overdue_interest, case.overdue_penalty = agg["p"], agg["i"], agg["pen"]
            case.overdue_total = agg["p"] + agg["i"] + agg["pen"]
            case.stage = 1 if dpd < 7 else 2 if dpd < 16 else 3
            case.priority = min(dpd, 90) + min(50, int(case.overdue_total / 1000))
            case.save()
            if created:
                CaseEvent.objects.create(case=case, kind="opened", at=d.isoformat() + "T00:00:00+08:00",
                                         business_date=d)
        transaction.set_rollback(True)
    secs = time.perf_counter() - t0
    print(f"baseline (per-loan ORM loop, {len(ids):,} delinquent loans): {secs:.2f} s · "
          f"{secs * 1000 / max(len(ids), 1):.3f} ms per delinquent loan")
    return secs / max(len(ids), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loans", type=int, default=100_000)
    ap.add_argument("--delinquent", type=float, default=0.07)
    ap.add_argument("--db", default="bench_coll")
    ap.add_argument("--reuse", action="store_true", help="keep the generated book from a previous run")
    ap.add_argument("--baseline-sample", type=int, default=2000)
    args = ap.parse_args()
    d = date(2026, 6, 10)
    setup_django(args.db, fresh=not args.reuse)
    from django.conf import settings

    # at this scale the day's messages go to django-q2 workers in chunks (as in production), not inline
    settings.COLLECTIONS = {**settings.COLLECTIONS, "INLINE_MESSAGE_LIMIT": 0}
    from django.db import connection

    from collections_app.models import CaseEvent, CollectionCase, ContactAttempt
    from collections_app.services.business_day import step

    if not args.reuse:
        info = generate(args.loans, args.delinquent, d)
        collectors()
    else:
        with connection.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM servicing_loan WHERE status = 'overdue'")
            info = {"delinquent": cur.fetchone()[0]}
            cur.execute("""TRUNCATE collections_app_caseevent, collections_app_contactattempt,
                           collections_app_escalationrequest, collections_app_promisetopay,
                           collections_app_hardshiparrangement, collections_app_waiverrequest,
                           collections_app_complaint, collections_app_collectioncase""")
    bad = info["delinquent"]
    per_loan_baseline = orm_baseline(d, args.baseline_sample)
    first = timed("step(d) first run", lambda: step(d), bad, args.loans)
    rerun = timed("step(d) re-run   ", lambda: step(d), bad, args.loans)
    nxt = timed("step(d+1)        ", lambda: step(d + timedelta(days=1)), bad, args.loans)
    cases = CollectionCase.objects.count()
    print(f"rows: {cases:,} cases, {CaseEvent.objects.count():,} timeline events, "
          f"{ContactAttempt.objects.count():,} contact attempts; {cases / first:,.0f} cases/s on the first run")
    naive = per_loan_baseline * bad
    print(f"ratio: per-loan ORM loop extrapolated to {bad:,} delinquent loans = {naive:.1f} s → set-based is "
          f"{naive / first:.1f}× faster; re-run = {rerun / first:.1%} of the first run; next day {nxt:.2f} s")
    budget = 300 * args.loans / 1_000_000
    print(f"budget: the whole business day ≤ 5 min per 1M loans ({budget:.0f} s here); the collections step took "
          f"{first:.1f} s = {first / budget:.1%} of it")


if __name__ == "__main__":
    main()
