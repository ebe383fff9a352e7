"""Benchmark: a maturing cohort paid off by one bank result file and settled (结清) — every loan with its
certificate and its notice — against settling the same loans one by one.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_settle PYTHONWARNINGS=ignore
    .venv/bin/python bench/settlement.py --loans 100000

1. Generates N loans whose instalment due on --date is their last (bench/debit_batch.py `generate`, maturing
   100 %), builds and exports the std batch and writes the bank's answer (bench/import_results.py: 97 % succeed).
2. import_debit_results end to end, timed: the file pays the cohort off and settles it (set-based posting, then
   `settlement.settle_loans` on the loans it paid off). Checked: every loan paid off is settled, with one
   certificate and one settlement notice per channel whose cause_at is the payment's time.
3. The same loans put back to "paid off, not settled" (their certificates, settlement notices and audit rows
   removed); `settle_loans` over all of them, timed: what the business day's safety net does with a cohort.
4. Baseline, in the same run: the same put-back, then `settle_loans([loan])` loan by loan on --naive-sample loans
   (one loan's checks, update, certificate and notice each: what a per-loan loop costs), extrapolated.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from debit_batch import exported_batch  # noqa: E402
from import_results import write_result_file  # noqa: E402

PUT_BACK_SQL = [
    "DELETE FROM notices_settlementcertificate WHERE loan_id = ANY(%(ids)s)",
    "DELETE FROM notices_notice WHERE event = 'settlement' AND loan_id = ANY(%(ids)s)",
    "DELETE FROM servicing_auditlog WHERE action IN ('loan.settled', 'certificate.issued')",
    "UPDATE servicing_loan SET status = 'active', settled_on = NULL WHERE id = ANY(%(ids)s)",
]


def put_back(ids: list[int]) -> None:
    """The loans paid off but not settled, as the posting leaves them just before settle_loans."""
    with common.raw_cursor() as cur:
        for sql in PUT_BACK_SQL:
            cur.execute(sql, {"ids": ids})
        cur.execute("VACUUM ANALYZE servicing_loan, notices_notice, notices_settlementcertificate")


def check() -> tuple[int, int, int]:
    """Of the loans paid off (every loan with a payment): those settled, those with one current certificate, those
    with one settlement notice per channel (sms and in-app: the generated borrowers have no e-mail) timed from
    their payment. Whole tables, hash joins: the bench's database holds nothing else."""
    with common.raw_cursor() as cur:
        cur.execute("""WITH p AS (SELECT loan_id, MAX(created_at) AS at FROM servicing_payment GROUP BY loan_id),
                            c AS (SELECT loan_id, COUNT(*) AS n FROM notices_settlementcertificate
                                   WHERE status <> 'superseded' GROUP BY loan_id),
                            n AS (SELECT n.loan_id, COUNT(*) AS n FROM notices_notice n JOIN p ON p.loan_id = n.loan_id
                                   WHERE n.event = 'settlement' AND n.cause_at = p.at GROUP BY n.loan_id)
                       SELECT COUNT(*) FILTER (WHERE l.status = 'settled'), COUNT(*) FILTER (WHERE c.n = 1),
                              COUNT(*) FILTER (WHERE n.n = 2)
                         FROM p JOIN servicing_loan l ON l.id = p.loan_id
                         LEFT JOIN c ON c.loan_id = p.loan_id LEFT JOIN n ON n.loan_id = p.loan_id""")
        return cur.fetchone()


def main(argv=None) -> int:
    ap = common.cohort_parser(__doc__, loans=100000, naive_sample=200)
    args = ap.parse_args(argv)
    common.setup_django()
    common.guard_database(args.force)
    n, d = args.loans, args.date
    from django.conf import settings

    from servicing.services.debits import results
    from servicing.services.settlement import settle_loans

    settings.NOTICES = {**settings.NOTICES, "SYNC_TASKS": False}  # PDFs are a worker's job, not timed here
    print(f"generating {n:,} loans maturing on {d}, the batch and its result file …")
    ctx, batch, tmp = exported_batch(n, d, maturing=100)
    path = tmp / "result.csv"
    rows = write_result_file(path, batch.pk, d, insufficient=0)
    with common.raw_cursor() as cur:
        cur.execute("VACUUM ANALYZE servicing_debit")

    from django_q.models import OrmQ

    tasks_before = OrmQ.objects.count()
    with common.measure("import_debit_results (pays off and settles the cohort)") as imp:
        summary = results.import_debit_results(path, channel=ctx["channel"])
    with common.raw_cursor() as cur:
        cur.execute("SELECT loan_id FROM servicing_payment ORDER BY loan_id")
        paid = [r[0] for r in cur.fetchall()]
    in_import = check()
    print(f"  summary: rows={summary['rows']} succeeded={summary['succeeded']}; settled {in_import[0]:,}, "
          f"certificates {in_import[1]:,}, notices {in_import[2]:,} of {len(paid):,} paid off; "
          f"{OrmQ.objects.count() - tasks_before:,} tasks queued")

    put_back(paid)
    with common.measure("settle_loans over the cohort") as bulk:
        settled = settle_loans(paid)
    bulk_check = check()

    sample = paid[:min(args.naive_sample, len(paid))]
    put_back(sample)
    t0 = time.perf_counter()
    for loan_id in sample:
        settle_loans([loan_id])
    naive_s = time.perf_counter() - t0
    naive_total = naive_s / len(sample) * len(paid)

    table = common.ResultTable(f"settling a cohort of {len(paid):,} paid-off loans ({common.machine_info()})")
    table.add(common.Row("import end to end (pays off + settles)", rows, imp.seconds, imp.peak_memory))
    table.add(common.Row("settle_loans (set-based)", len(settled), bulk.seconds, bulk.peak_memory,
                         baseline_seconds=naive_total,
                         note=f"baseline: settle_loans loan by loan on {len(sample):,}, extrapolated"))
    print(table.render())
    print(table.markdown())
    common.verdict(in_import == (len(paid),) * 3 and len(paid) == summary["succeeded"],
                   f"the import settled every loan it paid off, each with one certificate and its notices "
                   f"({in_import[0]:,} / {in_import[1]:,} / {in_import[2]:,} of {len(paid):,})")
    common.verdict(bulk_check == (len(paid),) * 3 and len(settled) == len(paid),
                   f"settle_loans settled the whole cohort again, each with one certificate and its notices "
                   f"({bulk_check[0]:,} / {bulk_check[1]:,} / {bulk_check[2]:,})")
    common.verdict(naive_total / bulk.seconds >= 10,
                   f"set-based ≥ 10× loan by loan ({naive_total / bulk.seconds:.1f}×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
