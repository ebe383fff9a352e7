"""Benchmark: a bank outage over N loans recognised late (渠道事故) — the incident opened by hand, every borrower
told once, the penalty charged meanwhile waived with one approval — against doing it loan by loan.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_incident PYTHONWARNINGS=ignore
    .venv/bin/python bench/incident.py --loans 50000

1. Generates N due loans (bench/debit_batch.py `generate`), builds and exports the std batch; the bank answers
   every debit '02' (channel down, institution-side). Automatic detection is off for the import (its minimum
   above N), as if nobody noticed: the business days after it (--days, past the product's grace) charge penalty.
2. open_incident by hand (window from the due date; the affected loans found from the failed debits, each
   borrower sent one incident_apology per channel through one COPY into the outbox), timed.
3. request_waiver, then approve_waiver (set-based: one entry per loan, the instalments, DPD, status), timed.
   Checked: one apology per channel for every affected borrower; every loan's charged penalty and compound
   waived with one entry; verify_books (up to 200k rows).
4. Baseline, in the same run and rolled back: what the per-loan code did for --naive-sample loans (notify() for
   each apology; per loan its instalments saved, post_entry, its status refreshed), extrapolated.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from debit_batch import exported_batch  # noqa: E402

OUTAGE_SQL = """
COPY (SELECT d.reference, d.amount::text, 'FAILED', '02', '系统未开放或暂时关闭', '', ''
        FROM servicing_debit d WHERE d.batch_id = %s ORDER BY d.id)
TO STDOUT WITH (FORMAT csv)
"""


class _RolledBack(Exception):
    pass


def write_outage_file(path: Path, batch_id: int) -> None:
    with open(path, "wb") as fh, common.raw_cursor() as cur:
        fh.write("\ufeffreference,amount,status,code,message,settled_on,channel_txn_id\r\n".encode())
        with cur.copy(OUTAGE_SQL.replace("%s", str(batch_id))) as cp:
            for block in cp:
                fh.write(bytes(block).replace(b"\n", b"\r\n"))


def naive(incident, sample: list[int], on_date, user) -> float:
    """The per-loan code this replaced, on `sample` loans, rolled back: an apology through notify() each, then per
    loan its charged instalments saved, its waiver entry posted and its status refreshed."""
    from django.conf import settings
    from django.db import connection, transaction

    from notices.services import events
    from servicing.models import IncidentLoan, Instalment, Loan
    from servicing.models.ledger import Account, EntryKind
    from servicing.services.ledger import Leg, post_entry
    from servicing.services.payments import instalment_status, refresh_loan_status

    t0 = time.perf_counter()
    try:
        with transaction.atomic():
            base = settings.REPAYDESK.get("PUBLIC_BASE_URL", "").rstrip("/")
            for il in IncidentLoan.objects.filter(incident=incident, loan_id__in=sample).select_related("loan__borrower"):
                url = f"{base}/pay/{il.loan.contract_no}/"
                events.notify("incident_apology", loan=il.loan, obj=il, on_date=incident.window_start,
                              context={"incident_summary": "-", "what_to_do": url, "pay_url": url})
            with connection.cursor() as cur:
                cur.execute("""SELECT split_part(e.idempotency_key, ':', 2)::bigint, j.account, SUM(j.amount)
                                 FROM servicing_journalentry e JOIN servicing_journalline j ON j.entry_id = e.id
                                WHERE e.kind = 'accrual' AND e.loan_id = ANY(%s) AND e.value_date >= %s
                                  AND j.account IN ('penalty_receivable', 'compound_receivable')
                                GROUP BY 1, 2""", [sample, incident.window_start])
                charges: dict[int, dict[str, Decimal]] = defaultdict(dict)
                for inst_id, account, amount in cur.fetchall():
                    charges[inst_id]["penalty" if account == "penalty_receivable" else "compound"] = amount
            by_loan = defaultdict(list)
            for inst in Instalment.objects.filter(pk__in=list(charges)).order_by("loan_id", "seq"):
                by_loan[inst.loan_id].append(inst)
            for loan in Loan.objects.filter(pk__in=list(by_loan)).select_related("product"):
                part = {"penalty": Decimal("0"), "compound": Decimal("0")}
                for inst in by_loan[loan.pk]:
                    for comp in part:
                        amount = min(charges[inst.pk].get(comp, Decimal("0")), inst.outstanding(comp))
                        if amount > 0:
                            setattr(inst, f"{comp}_waived", getattr(inst, f"{comp}_waived") + amount)
                            part[comp] += amount
                    inst.status = instalment_status(inst, on_date)
                    inst.save(update_fields=["penalty_waived", "compound_waived", "status", "paid_on"])
                total = part["penalty"] + part["compound"]
                post_entry(kind=EntryKind.WAIVER, key=f"naive:{incident.pk}:{loan.pk}", value_date=on_date, loan=loan,
                           memo="naive", user=user, legs=[Leg(Account.WAIVER_EXPENSE, total),
                                                          Leg(Account.PENALTY_RECEIVABLE, -part["penalty"]),
                                                          Leg(Account.COMPOUND_RECEIVABLE, -part["compound"])])
                IncidentLoan.objects.filter(incident=incident, loan=loan).update(waived_amount=total)
                refresh_loan_status(loan, on_date)
            raise _RolledBack
    except _RolledBack:
        pass
    return time.perf_counter() - t0


def check(incident_id: int) -> tuple[int, int, int]:
    """Of the incident's loans: those with one apology per channel (sms and in-app: the generated borrowers have
    no e-mail), those with nothing charged left to waive, those with one waiver entry. Whole tables, hash joins:
    the bench's database holds nothing else."""
    with common.raw_cursor() as cur:
        cur.execute("""
            WITH n AS (SELECT loan_id, COUNT(*) AS n FROM notices_notice
                        WHERE event = 'incident_apology' AND object_type = 'servicing.incidentloan' GROUP BY loan_id),
                 i AS (SELECT loan_id, bool_and(penalty_accrued = penalty_paid + penalty_waived
                                                AND compound_accrued = compound_paid + compound_waived) AS clear
                         FROM servicing_instalment GROUP BY loan_id),
                 e AS (SELECT loan_id, COUNT(*) AS n FROM servicing_journalentry WHERE kind = 'waiver'
                        GROUP BY loan_id)
            SELECT COUNT(*) FILTER (WHERE n.n = 2), COUNT(*) FILTER (WHERE i.clear), COUNT(*) FILTER (WHERE e.n = 1)
              FROM servicing_incidentloan il LEFT JOIN n ON n.loan_id = il.loan_id
              JOIN i ON i.loan_id = il.loan_id LEFT JOIN e ON e.loan_id = il.loan_id
             WHERE il.incident_id = %(inc)s""", {"inc": incident_id})
        return cur.fetchone()


def main(argv=None) -> int:
    ap = common.cohort_parser(__doc__, loans=50000, naive_sample=500)
    ap.add_argument("--days", type=int, default=6, help="business days of penalty before the incident is opened")
    args = ap.parse_args(argv)
    common.setup_django()
    common.guard_database(args.force)
    n, d = args.loans, args.date
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from servicing.services.business_day import run_business_day
    from servicing.services.debits import results
    from servicing.services.debits.incidents import approve_waiver, open_incident, request_waiver
    from servicing.services.verify import verify_books

    settings.REPAYDESK = {**settings.REPAYDESK, "INCIDENT_MIN_DEBITS": n + 1}  # nobody noticed at the import
    print(f"generating {n:,} due loans, the batch and the outage's result file …")
    ctx, batch, tmp = exported_batch(n, d)
    write_outage_file(tmp / "result.csv", batch.pk)
    summary = results.import_debit_results(tmp / "result.csv", channel=ctx["channel"])
    print(f"  import: failed={summary['failed']} incidents={summary['incidents']}")
    day = d
    with common.measure(f"{args.days} business days charging penalty"):
        for _ in range(args.days):
            day += timedelta(days=1)
            run_business_day(day)
    with common.raw_cursor() as cur:
        cur.execute("VACUUM ANALYZE servicing_instalment, servicing_journalentry, servicing_journalline")

    User = get_user_model()
    ops = User.objects.create(username="bench-ops")
    boss = User.objects.create(username="bench-boss")
    with common.measure("open_incident (affected loans + apologies)") as opened:
        incident = open_incident(channel=ctx["channel"], window_start=d, title="bench outage", user=ops)
    affected = incident.affected.count()
    # the baseline before the waiver, on the same charges (rolled back); its apologies meet the ones just queued
    # on their dedupe key: notify() still builds each and tries its insert, as it did for a first apology
    sample = list(incident.affected.order_by("loan_id").values_list("loan_id", flat=True)[:args.naive_sample])
    naive_s = naive(incident, sample, day, boss)
    naive_total = naive_s / len(sample) * affected
    request_waiver(incident, user=ops)
    with common.measure("approve_waiver (set-based)") as waiver:
        total = approve_waiver(incident, user=boss, on_date=day)
    told, clear, entries = check(incident.pk)
    print(f"  {affected:,} loans affected, {total} yuan waived; told {told:,}, nothing charged left {clear:,}, "
          f"one waiver entry {entries:,}")

    both = opened.seconds + waiver.seconds

    table = common.ResultTable(f"an outage over {affected:,} loans recognised late ({common.machine_info()})")
    table.add(common.Row("open_incident (affected loans, apologies)", affected, opened.seconds, opened.peak_memory))
    table.add(common.Row("approve_waiver", affected, waiver.seconds, waiver.peak_memory))
    table.add(common.Row("open + waive", affected, both, "-", baseline_seconds=naive_total,
                         note=f"baseline: per loan on {len(sample):,}, rolled back, extrapolated"))
    print(table.render())
    print(table.markdown())
    common.verdict(told == affected == n, f"every borrower told once per channel ({told:,} of {n:,})")
    common.verdict(clear == entries == affected and total > 0,
                   f"every loan's penalty and compound waived with one entry ({clear:,} / {entries:,})")
    if n <= 200_000:
        failed = [r.name for r in verify_books() if not r.ok]
        common.verdict(not failed, f"verify_books {'ok' if not failed else failed}")
    common.verdict(naive_total / both >= 10, f"set-based ≥ 10× loan by loan ({naive_total / both:.1f}×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
