"""Benchmark: run_business_day over N generated loans, against a naive per-loan ORM loop on a sample.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_bd PYTHONWARNINGS=ignore
    .venv/bin/python bench/business_day.py --loans 100000 [--overdue-share 0.07] [--naive-sample 2000]
                                           [--date 2026-06-15] [--keep] [--verify/--no-verify]

1. Empties the servicing tables of the bench database (created and migrated if missing) and generates the
   book fast: borrowers and loans by COPY (psycopg 3 ``cursor.copy()``), one schedule per distinct
   (product, method, principal, term) template from the pure ``build_schedule`` (COPYed once), then the
   per-loan rows derived set-based in SQL: instalments, the disbursement entries, and for the instalments
   already due and paid the billing and payment history (one billing entry and one payment per loan,
   allocations per instalment, so ``verify_books`` holds). Triggers are skipped and secondary
   indexes rebuilt after the load; then VACUUM ANALYZE.
   The book on the date: every loan active with future instalments; ``--overdue-share`` of them with their
   last 1-3 past-due instalments unpaid (not yet billed, not yet marked: the business day catches up);
   ``--credit-share`` carry a credit balance (挂账); about 1/28 have an instalment due on the date; every
   loan has an active std mandate except ``--mandate-gap``; then the day's debit cut-off
   (create_debit_batch) runs, as the 10:00 task does before the 22:30 business day.
2. The baseline: a straightforward per-loan ORM loop over ``--naive-sample`` random loans (load the
   instalments, bill what is due via post_entry, mark overdue, accrue penalty with servicing.domain.accrual,
   save each changed instalment and the loan, one transaction per loan), timed and extrapolated to N.
3. run_business_day(date) timed (total, per step; process peak RSS), then the same date again; both untimed
   by tracemalloc, which slows Python code; the re-run's Python heap peak comes from a third, traced run.
4. verify_books() (default on up to 100k loans), the table and the PASS/FAIL lines for the targets of
   docs performance.md: ≤ 5 min at 1M loans; ≥ 10x the naive loop; a re-run ≤ 10 % of the first run.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

ZERO = Decimal(0)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

TABLES = [
    "servicing_reconciliationexception", "servicing_debitattempt", "servicing_retrystate", "servicing_debitskip",
    "servicing_misseddebitexception", "servicing_preduewarning", "servicing_incidentloan", "servicing_incident",
    "servicing_debit", "servicing_debitbatch", "servicing_resultfile",
    "servicing_allocation", "servicing_payment", "servicing_journalline", "servicing_journalentry",
    "servicing_instalment", "servicing_instalmentevent", "servicing_mandate", "servicing_mandateevent",
    "servicing_loan", "servicing_loanevent", "servicing_borrower", "servicing_businessdayrun",
    "servicing_auditlog", "pghistory_context", "notices_notice",  # notices: no FK for CASCADE to follow
]
LOAD_TABLES = ["servicing_borrower", "servicing_loan", "servicing_instalment", "servicing_mandate",
               "servicing_journalentry", "servicing_journalline", "servicing_payment", "servicing_allocation"]
DEBIT_CHANNEL = "std"  # the bundled bank profile every generated mandate debits through

# product code -> (share of loans, principals (yuan), terms (months), methods with weights)
MIX = {
    "credit_line": (0.45, [1000 * k for k in (2, 3, 5, 8, 10, 15, 20, 30, 50)], (3, 6, 12),
                    {"equal_instalment": 1.0}),
    "instalment": (0.35, [500 * k for k in (2, 3, 4, 6, 8, 10, 12, 16, 20, 24)], (3, 6, 12),
                   {"flat_fee": 1.0}),
    "car": (0.15, [10000 * k for k in (5, 6, 8, 10, 12, 15, 20)], (12, 24, 36), {"equal_instalment": 1.0}),
    "mortgage": (0.05, [100000 * k for k in (3, 5, 8, 10, 15, 20)], (60,),
                 {"equal_instalment": 0.7, "equal_principal": 0.3}),
}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉兰春梅海燕文斌宇浩鑫"
CORE_STEPS = ["bill_due", "apply_credit", "mark_overdue", "accrue_penalties", "refresh_dpd", "settlements"]
TEMPLATE_START = date(2001, 1, 10)  # amounts of a regular monthly schedule do not depend on the start date


def shift_months(year: int, month: int, day: int, months: int) -> date:
    """date(year, month, day) moved by whole months (day <= 28, so never clamped)."""
    index = year * 12 + month - 1 + months
    return date(index // 12, index % 12 + 1, day)


# ----------------------------------------------------------------------------------------------- generation


def plan_loans(n: int, d: date, overdue_share: float, credit_share: float, seed: int):
    """Yield (loan_id, code, method, principal, term, disbursed_on, day, unpaid_from_seq|None, credit)."""
    rng = random.Random(seed)
    codes = list(MIX)
    cum = []
    total = 0.0
    for c in codes:
        total += MIX[c][0]
        cum.append(total)
    spec = {c: ([Decimal(p) for p in MIX[c][1]], MIX[c][2], list(MIX[c][3]), list(MIX[c][3].values())) for c in codes}
    for loan_id in range(1, n + 1):
        code = rng.choices(codes, cum_weights=cum)[0]
        principals, terms, methods, method_weights = spec[code]
        method = methods[0] if len(methods) == 1 else rng.choices(methods, method_weights)[0]
        principal = rng.choice(principals)
        term = rng.choice(terms)
        day = rng.randint(1, 28)
        m = rng.randint(1, min(term - 1, 23))  # months since disbursement: the loan still has a future due date
        delinquent = rng.random() < overdue_share
        if delinquent and m == 1 and day >= d.day:
            m = 2  # a delinquent loan needs a past due date
        past = m - 1 + (1 if day < d.day else 0)  # instalments due before the date
        unpaid_from = None
        if delinquent and past >= 1:
            unpaid = min(past, rng.choices((1, 2, 3), cum_weights=(60, 85, 100))[0])
            unpaid_from = past - unpaid + 1
        credit = Decimal(rng.randint(10, 500)) if unpaid_from is None and rng.random() < credit_share else ZERO
        disbursed_on = shift_months(d.year, d.month, day, -m)
        yield loan_id, code, method, principal, term, disbursed_on, day, unpaid_from, credit


def generate(n: int, d: date, overdue_share: float, credit_share: float, seed: int,
             mandate_gap: float = 0.005) -> dict:
    from django.db import transaction
    from django.utils import timezone

    from servicing.models import Channel, LoanProduct
    from servicing.services import reference_data
    from servicing.services.loans import loan_schedule

    stats: dict = {"steps": {}}
    t_all = time.perf_counter()

    def step(name, t0, rows=None):
        secs = time.perf_counter() - t0
        stats["steps"][name] = {"seconds": round(secs, 2), "rows": rows}
        print(f"    {name}: {secs:,.1f} s" + (f", {rows:,} rows ({rows / secs:,.0f}/s)" if rows else ""), flush=True)
        return time.perf_counter()

    t = time.perf_counter()
    with common.raw_cursor() as cur:
        common.truncate(cur, TABLES)
    reference_data.ensure()
    products = LoanProduct.objects.in_bulk(list(MIX), field_name="code")
    for p in products.values():
        if p.holiday_rule != "none":
            sys.exit(f"bench: product {p.code} has holiday rule {p.holiday_rule}; the generator expands due dates "
                     "as plain months and would not match its schedule")
    channel = Channel.objects.get(code=DEBIT_CHANNEL)
    if not all(p.auto_debit for p in products.values()):
        sys.exit("bench: the generator gives every loan a mandate and expects every product to be auto-debit")
    t = step("truncate + reference data", t)

    now = timezone.now()
    templates: dict[tuple, list] = {}
    delinquent: list[tuple[int, int]] = []
    rows_total = 0
    with transaction.atomic(), common.raw_cursor() as cur, common.bulk_load(cur, LOAD_TABLES):
        cur.execute("SET LOCAL work_mem = '256MB'")
        def borrowers():
            rng = random.Random(seed + 1)
            for i in range(1, n + 1):
                name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
                yield (i, name, f"1101011990{i:07d}X"[:18], f"13{i:09d}", "", "zh-hans", now)

        rows_total += common.copy_rows(cur, "servicing_borrower",
                                       ("id", "name", "id_number", "phone", "email", "language", "created_at"),
                                       borrowers())
        t = step("COPY borrowers", t, n)

        def loans():
            for (loan_id, code, method, principal, term, disbursed_on, day, unpaid_from,
                 credit) in plan_loans(n, d, overdue_share, credit_share, seed):
                product = products[code]
                key = (product.pk, method, principal, term)
                if key not in templates:
                    templates[key] = loan_schedule(
                        product, principal=principal, months=term, start=TEMPLATE_START,
                        annual_rate_pct=product.annual_rate_pct, fee_rate_pct=product.fee_rate_pct, method=method,
                        repayment_day=None)
                if unpaid_from is not None:
                    delinquent.append((loan_id, unpaid_from))
                yield (loan_id, f"HT{disbursed_on:%Y%m%d}{loan_id:07d}", product.pk, loan_id, principal,
                       product.annual_rate_pct, product.fee_rate_pct, method, term, disbursed_on, day, "active", 0,
                       credit, now)

        rows_total += common.copy_rows(
            cur, "servicing_loan",
            ("id", "contract_no", "product_id", "borrower_id", "principal", "annual_rate_pct", "fee_rate_pct",
             "schedule_method", "term_months", "disbursed_on", "repayment_day", "status", "dpd", "credit_balance",
             "created_at"), loans())
        t = step("COPY loans", t, n)

        cur.execute("""CREATE TEMP TABLE bench_tpl (product_id bigint, method text, principal numeric(18,2),
                       term smallint, seq smallint, principal_due numeric(18,2), interest_due numeric(18,2),
                       fee_due numeric(18,2)) ON COMMIT DROP""")
        common.copy_rows(cur, "bench_tpl", ("product_id", "method", "principal", "term", "seq", "principal_due",
                                            "interest_due", "fee_due"),
                         ((*key, line.seq, line.principal, line.interest, line.fee)
                          for key, lines in templates.items() for line in lines))
        cur.execute("CREATE TEMP TABLE bench_state (loan_id bigint PRIMARY KEY, unpaid_from smallint) ON COMMIT DROP")
        common.copy_rows(cur, "bench_state", ("loan_id", "unpaid_from"), delinquent)
        cur.execute("ANALYZE bench_tpl; ANALYZE bench_state")
        stats["templates"] = len(templates)
        stats["delinquent_loans"] = len(delinquent)
        t = step(f"COPY {len(templates)} schedule templates + {len(delinquent):,} delinquency marks", t)

        cur.execute("""
            INSERT INTO servicing_instalment (loan_id, seq, period_start, due_date, principal_due, interest_due,
                fee_due, penalty_accrued, compound_accrued, principal_paid, interest_paid, fee_paid, penalty_paid,
                compound_paid, principal_waived, interest_waived, fee_waived, penalty_waived, compound_waived,
                billed, penalty_accrued_through, status, paid_on)
            SELECT loan_id, seq, period_start, due_date, principal_due, interest_due, fee_due, 0, 0,
                   CASE WHEN paid THEN principal_due ELSE 0 END, CASE WHEN paid THEN interest_due ELSE 0 END,
                   CASE WHEN paid THEN fee_due ELSE 0 END, 0, 0, 0, 0, 0, 0, 0,
                   paid, NULL, CASE WHEN paid THEN 'paid' ELSE 'pending' END, CASE WHEN paid THEN due_date END
              FROM (SELECT l.id AS loan_id, t.seq, t.principal_due, t.interest_due, t.fee_due,
                           (l.disbursed_on + make_interval(months => t.seq - 1))::date AS period_start,
                           (l.disbursed_on + make_interval(months => t.seq::int))::date AS due_date,
                           ((l.disbursed_on + make_interval(months => t.seq::int))::date < %(d)s
                            AND (s.unpaid_from IS NULL OR t.seq < s.unpaid_from)) AS paid
                      FROM servicing_loan l
                      JOIN bench_tpl t ON t.product_id = l.product_id AND t.method = l.schedule_method
                                      AND t.principal = l.principal AND t.term = l.term_months
                      LEFT JOIN bench_state s ON s.loan_id = l.id) x""", {"d": d})
        # no ORDER BY: the templates are hashed and the loans scanned in id order, so a loan's instalments
        # land together as they do when loans are booked one by one (a 12M-row sort would double the time)
        n_inst = cur.rowcount
        rows_total += n_inst
        t = step("INSERT … SELECT instalments", t, n_inst)

        cur.execute("""
            INSERT INTO servicing_journalentry (id, kind, loan_id, value_date, idempotency_key, memo, created_at)
            SELECT id, 'disbursement', id, disbursed_on, 'disbursement:' || id, 'disbursement ' || contract_no, now()
              FROM servicing_loan""")
        rows_total += cur.rowcount
        cur.execute("""
            INSERT INTO servicing_journalline (entry_id, loan_id, account, amount)
            SELECT l.id, l.id, x.account, x.amount FROM servicing_loan l
             CROSS JOIN LATERAL (VALUES ('principal_receivable', l.principal),
                                        ('disbursement_clearing', -l.principal)) x(account, amount)""")
        rows_total += cur.rowcount
        t = step("disbursement entries + lines", t, 3 * n)

        # 代扣协议: every product debits automatically, so every loan has a mandate on the std channel; a
        # `mandate_gap` share has none usable (half never signed, half suspended): the debits step's missed-debit
        # and pre-due paths then see the handful a real book has, not the whole delinquent book
        gap = int(round(mandate_gap * 10_000))
        cur.execute("""
            INSERT INTO servicing_mandate (agreement_no, borrower_id, loan_id, channel_id, account_no, account_name,
                bank_code, status, signed_at, activated_at, suspended_at, suspend_reason, cancel_cause, cancel_reason)
            SELECT 'MD' || lpad(x.id::text, 10, '0'), x.borrower_id, x.id, %(ch)s, '6222' || lpad(x.id::text, 12, '0'),
                   b.name, 'ICBC', CASE WHEN x.h < %(gap)s THEN 'suspended' ELSE 'active' END, now(), now(),
                   CASE WHEN x.h < %(gap)s THEN now() END,
                   CASE WHEN x.h < %(gap)s THEN 'bench: account frozen' ELSE '' END, '', ''
              FROM (SELECT l.id, l.borrower_id, (l.id * 7919) %% 10000 AS h FROM servicing_loan l) x
              JOIN servicing_borrower b ON b.id = x.borrower_id
             WHERE x.h >= %(gap)s / 2""", {"ch": channel.pk, "gap": gap})
        n_mandates = cur.rowcount
        rows_total += n_mandates
        stats["mandates"] = n_mandates
        t = step("mandates", t, n_mandates)

        cur.execute("""
            CREATE TEMP TABLE bench_paid ON COMMIT DROP AS
            SELECT l.id AS loan_id, COALESCE(p.principal, 0) AS principal, COALESCE(p.interest, 0) AS interest,
                   COALESCE(p.fee, 0) AS fee, l.credit_balance AS credit,
                   COALESCE(p.last_due, %(d)s::date - 1) AS value_date
              FROM servicing_loan l
              LEFT JOIN (SELECT loan_id, SUM(principal_paid) AS principal, SUM(interest_paid) AS interest,
                                SUM(fee_paid) AS fee, MAX(due_date) AS last_due
                           FROM servicing_instalment WHERE status = 'paid' GROUP BY loan_id) p ON p.loan_id = l.id
             WHERE p.loan_id IS NOT NULL OR l.credit_balance > 0""", {"d": d})
        cur.execute("ANALYZE bench_paid")
        # history billing: one entry per loan (instead of one per instalment) for the instalments already paid
        cur.execute("""
            INSERT INTO servicing_journalentry (id, kind, loan_id, value_date, idempotency_key, memo, created_at)
            SELECT %(n)s + loan_id, 'billing', loan_id, value_date, 'bench-billing:' || loan_id,
                   'instalments due (history)', now()
              FROM bench_paid WHERE interest + fee > 0""", {"n": n})
        rows_total += cur.rowcount
        cur.execute("""
            INSERT INTO servicing_journalline (entry_id, loan_id, account, amount)
            SELECT %(n)s + b.loan_id, b.loan_id, x.account, x.amount FROM bench_paid b
             CROSS JOIN LATERAL (VALUES ('interest_receivable', b.interest), ('interest_income', -b.interest),
                                        ('fee_receivable', b.fee), ('fee_income', -b.fee)) x(account, amount)
             WHERE b.interest + b.fee > 0 AND x.amount <> 0""", {"n": n})
        rows_total += cur.rowcount
        # history payment: one bank payment per loan paying the past instalments (+ the credit balance left)
        cur.execute("""
            INSERT INTO servicing_journalentry (id, kind, loan_id, value_date, idempotency_key, memo, created_at)
            SELECT 2 * %(n)s + loan_id, 'payment', loan_id, value_date, 'payment:bench-' || loan_id,
                   'bank payment bench-' || loan_id, now() FROM bench_paid""", {"n": n})
        rows_total += cur.rowcount
        cur.execute("""
            INSERT INTO servicing_journalline (entry_id, loan_id, account, amount)
            SELECT 2 * %(n)s + b.loan_id, b.loan_id, x.account, x.amount FROM bench_paid b
             CROSS JOIN LATERAL (VALUES ('clearing_bank', b.principal + b.interest + b.fee + b.credit),
                                        ('principal_receivable', -b.principal), ('interest_receivable', -b.interest),
                                        ('fee_receivable', -b.fee), ('credit_balance', -b.credit)) x(account, amount)
             WHERE x.amount <> 0""", {"n": n})
        rows_total += cur.rowcount
        cur.execute("""
            INSERT INTO servicing_payment (id, reference, loan_id, channel, amount, value_date, prepay_mode,
                applied_amount, credited_amount, entry_id, reversed, created_at, note)
            SELECT loan_id, 'bench-' || loan_id, loan_id, 'bank', principal + interest + fee + credit, value_date, '',
                   principal + interest + fee, credit, 2 * %(n)s + loan_id, false, now(), ''
              FROM bench_paid""", {"n": n})
        rows_total += cur.rowcount
        t = step("history billing + payment entries, lines, payments", t)
        cur.execute("""
            INSERT INTO servicing_allocation (entry_id, payment_id, instalment_id, principal, interest, fee)
            SELECT 2 * %(n)s + i.loan_id, i.loan_id, i.id, i.principal_paid, i.interest_paid, i.fee_paid
              FROM servicing_instalment i
             WHERE i.status = 'paid' AND i.principal_paid + i.interest_paid + i.fee_paid > 0""", {"n": n})
        n_alloc = cur.rowcount
        rows_total += n_alloc
        t = step("allocations", t, n_alloc)
        for table in LOAD_TABLES:
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)")
        cur.execute("SELECT setval('servicing_contract_no_seq', %s)", [n])
    t = step("rebuild indexes + commit", t)

    with common.raw_cursor() as cur:
        for table in LOAD_TABLES:
            cur.execute(f"VACUUM (ANALYZE) {table}")
    t = step("VACUUM ANALYZE", t)

    # the day's debit cut-off (10:00, servicing.tasks.debit_cutoff_task) precedes the business day (22:30):
    # the real create_debit_batch, so the debits step finds today's and the catch-up debits in flight
    from servicing.services.debits.batches import create_debit_batch

    batch = create_debit_batch(d, channel)
    stats["debit_batch"] = {"planned": batch.count, "amount": str(batch.amount), **batch.batch.stats}
    t = step(f"debit cut-off: create_debit_batch ({batch.count:,} debits, setup, not timed in the day)", t,
             batch.count)
    stats["rows"] = rows_total
    stats["instalments"] = n_inst
    stats["allocations"] = n_alloc
    stats["seconds"] = round(time.perf_counter() - t_all, 2)
    return stats


def check_schedules(d: date, sample: int = 25, seed: int = 7) -> None:
    """The expanded templates equal build_schedule for a few real loans (due dates and amounts)."""
    from servicing.models import Loan
    from servicing.services.loans import loan_schedule

    ids = random.Random(seed).sample(range(1, Loan.objects.count() + 1), min(sample, Loan.objects.count()))
    for loan in Loan.objects.filter(pk__in=ids).select_related("product").prefetch_related("instalments"):
        lines = loan_schedule(loan.product, principal=loan.principal, months=loan.term_months, start=loan.disbursed_on,
                              annual_rate_pct=loan.annual_rate_pct, fee_rate_pct=loan.fee_rate_pct,
                              method=loan.schedule_method, repayment_day=loan.repayment_day)
        got = [(i.seq, i.period_start, i.due_date, i.principal_due, i.interest_due, i.fee_due)
               for i in sorted(loan.instalments.all(), key=lambda i: i.seq)]
        want = [(x.seq, x.period_start, x.due_date, x.principal, x.interest, x.fee) for x in lines]
        if got != want:
            sys.exit(f"bench: generated schedule of {loan.contract_no} differs from build_schedule:\n{got}\n{want}")


# ----------------------------------------------------------------------------------------------- the baseline


def naive_business_day(loan_ids: list[int], d: date) -> dict:
    """What a straightforward implementation does: loan by loan through the ORM and the pure functions."""
    from django.db import transaction

    from servicing.domain import accrual
    from servicing.domain.money import ZERO
    from servicing.models import Loan
    from servicing.models.ledger import Account, EntryKind
    from servicing.models.loans import InstalmentStatus, LoanStatus
    from servicing.services.accrual import grace_end, penalty_base_rate
    from servicing.services.ledger import Leg, post_entry

    counts = {"billed": 0, "overdue": 0, "accrued": 0, "loans_overdue": 0}
    for loan_id in loan_ids:
        with transaction.atomic():
            loan = Loan.objects.select_related("product").get(pk=loan_id)
            if loan.status not in (LoanStatus.ACTIVE, LoanStatus.OVERDUE):
                continue
            product = loan.product
            rate, markup = penalty_base_rate(loan), product.penalty_markup_pct / 100
            oldest = None
            for inst in loan.instalments.exclude(status=InstalmentStatus.SUPERSEDED).order_by("seq"):
                changed = False
                if inst.due_date <= d and not inst.billed:
                    if inst.interest_due or inst.fee_due:
                        post_entry(kind=EntryKind.BILLING, key=f"billing:{inst.pk}", value_date=inst.due_date,
                                   loan=loan, memo="instalment due",
                                   legs=[Leg(Account.INTEREST_RECEIVABLE, inst.interest_due),
                                         Leg(Account.INTEREST_INCOME, -inst.interest_due),
                                         Leg(Account.FEE_RECEIVABLE, inst.fee_due),
                                         Leg(Account.FEE_INCOME, -inst.fee_due)])
                    inst.billed, changed = True, True
                    counts["billed"] += 1
                if inst.status in (InstalmentStatus.PENDING, InstalmentStatus.PARTIALLY_PAID) and inst.due_date < d:
                    inst.status, changed = InstalmentStatus.OVERDUE, True
                    counts["overdue"] += 1
                if inst.status == InstalmentStatus.OVERDUE:
                    oldest = inst.due_date if oldest is None else min(oldest, inst.due_date)
                    if d > grace_end(inst.due_date, product) and (
                            inst.penalty_accrued_through is None or inst.penalty_accrued_through < d):
                        last = max(inst.penalty_accrued_through or inst.due_date, inst.due_date)
                        days = (d - last).days
                        pen = accrual.penalty_interest(inst.outstanding("principal"), rate, markup, days)
                        cmp = (accrual.compound_interest(inst.outstanding("interest"), rate, markup, days)
                               if product.compound_interest else ZERO)
                        if pen or cmp:
                            post_entry(kind=EntryKind.ACCRUAL, key=f"accrual:{inst.pk}:{d.isoformat()}",
                                       value_date=d, loan=loan, memo="penalty accrual",
                                       legs=[Leg(Account.PENALTY_RECEIVABLE, pen), Leg(Account.PENALTY_INCOME, -pen),
                                             Leg(Account.COMPOUND_RECEIVABLE, cmp),
                                             Leg(Account.COMPOUND_INCOME, -cmp)])
                        inst.penalty_accrued += pen
                        inst.compound_accrued += cmp
                        inst.penalty_accrued_through = d
                        changed = True
                        counts["accrued"] += 1
                if changed:
                    inst.save()
            loan.dpd = accrual.days_past_due(oldest, d)
            loan.status = LoanStatus.OVERDUE if oldest else LoanStatus.ACTIVE
            counts["loans_overdue"] += oldest is not None
            loan.save()
    return counts


# ----------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--loans", type=int, default=100_000)
    ap.add_argument("--overdue-share", type=float, default=0.07)
    ap.add_argument("--credit-share", type=float, default=0.005)
    ap.add_argument("--mandate-gap", type=float, default=0.005,
                    help="share of loans without a usable mandate (half none, half suspended)")
    ap.add_argument("--naive-sample", type=int, default=2000)
    ap.add_argument("--date", type=date.fromisoformat, default=date(2026, 6, 15))
    ap.add_argument("--seed", type=int, default=20260615)
    ap.add_argument("--generate-only", action="store_true",
                    help="generate the book and stop (implies --keep): for EXPLAIN ANALYZE of the steps by hand")
    ap.add_argument("--keep", action="store_true", help="keep the generated book (default: truncate at the end)")
    ap.add_argument("--verify", action=argparse.BooleanOptionalAction, default=None,
                    help="run verify_books() after the runs (default: on up to 100k loans)")
    ap.add_argument("--force", action="store_true", help="allow a database whose name does not start with 'bench'")
    ap.add_argument("--steps", default="all",
                    help="'all' (every step in business_day.STEPS), 'core' (the servicing steps: bill_due … "
                         "settlements) or a comma-separated list of step names")
    ap.add_argument("--trigger-gucs", action="store_true",
                    help="WORKAROUND, not the product as shipped: set pgtrigger.ignore / pghistory.context_* in the "
                         "session so the audit triggers' exception blocks do not abort a subtransaction per row "
                         "(see bench/README.md, 'business_day: findings'); figures are labelled")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    args = ap.parse_args(argv)
    if args.loans < 1 or not 0 <= args.overdue_share <= 1 or args.naive_sample < 0:
        ap.error("--loans must be >= 1, --overdue-share within 0..1, --naive-sample >= 0")
    db = common.guard_database(args.force)
    common.setup_django()
    from servicing.services import business_day
    from servicing.services.business_day import run_business_day
    from servicing.services.verify import verify_books

    names = [name for name, _ in business_day.STEPS]
    if args.steps != "all":
        wanted = CORE_STEPS if args.steps == "core" else [s.strip() for s in args.steps.split(",") if s.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            ap.error(f"--steps: unknown step(s) {', '.join(unknown)}; the steps are {', '.join(names)}")
        business_day.STEPS[:] = [(name, fn) for name, fn in business_day.STEPS if name in wanted]

    d, n = args.date, args.loans
    info = common.machine_info()
    print(f"business_day benchmark: {n:,} loans, {args.overdue_share:.0%} delinquent, date {d}, database {db}")
    print(f"  steps: {', '.join(name for name, _ in business_day.STEPS)}")
    print("  machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    out: dict = {"loans": n, "date": d.isoformat(), "machine": info, "args": {k: str(v) for k, v in vars(args).items()}}

    print("generate:")
    gen = generate(n, d, args.overdue_share, args.credit_share, args.seed, args.mandate_gap)
    out["generate"] = gen
    print(f"  generated {gen['rows']:,} rows in {gen['seconds']:,.1f} s ({gen['rows'] / gen['seconds']:,.0f} rows/s): "
          f"{gen['instalments']:,} instalments, {gen['allocations']:,} allocations, "
          f"{gen['delinquent_loans']:,} delinquent loans, {gen['templates']} schedule templates")
    check_schedules(d)
    if args.generate_only:
        return 0

    table = common.ResultTable(f"run_business_day({d}) over {n:,} loans")
    naive = None
    if args.naive_sample:
        sample = sorted(random.Random(args.seed + 2).sample(range(1, n + 1), min(args.naive_sample, n)))
        print(f"baseline: naive per-loan ORM loop over {len(sample):,} loans")
        with common.measure("naive loop") as naive:
            counts = naive_business_day(sample, d)
        naive.extra = {"sample": len(sample), "counts": counts,
                       "ms_per_loan": 1000 * naive.seconds / len(sample),
                       "extrapolated_seconds": naive.seconds / len(sample) * n}
        out["naive"] = {"seconds": round(naive.seconds, 3), **naive.extra, "rss_peak": naive.rss_peak_bytes}
        print(f"  {naive.extra['ms_per_loan']:.2f} ms/loan -> {common.fmt_seconds(naive.extra['extrapolated_seconds'])} "
              f"extrapolated to {n:,} loans; {counts}")

    if args.trigger_gucs:
        import uuid

        from django.db import connection

        with connection.cursor() as cur:
            cur.execute("SELECT set_config('pgtrigger.ignore', '{}', false), "
                        "set_config('pghistory.context_id', %s, false), "
                        "set_config('pghistory.context_metadata', %s, false)",
                        [str(uuid.uuid4()), json.dumps({"bench": "business_day", "date": d.isoformat()})])
        print("  NOTE: --trigger-gucs workaround active for the runs below (not the product as shipped)")
        table.title += "  [WITH --trigger-gucs WORKAROUND]"
    # both runs are timed without tracemalloc: it slows Python code, and the re-run is mostly Python (the SQL
    # finds nothing to do), so tracing inflated the re-run's share (10.7 % traced on a book whose untraced
    # re-run is well under). The heap figures come from a third, traced run of the same date.
    print("run_business_day (first run):")
    with common.measure("first run") as first:
        result = run_business_day(d)
    for name, stats in result["steps"].items():
        print(f"    {name:<16} {stats.get('seconds', 0):>8.2f} s  "
              + ", ".join(f"{k}={v}" for k, v in stats.items() if k != "seconds"))
    print("run_business_day (same date again):")
    with common.measure("re-run") as rerun:
        result2 = run_business_day(d)
    with common.measure("re-run, traced for its heap", trace_memory=True, quiet=True) as traced:
        run_business_day(d)
    rerun.py_peak_bytes = traced.py_peak_bytes
    for name, stats in result2["steps"].items():
        print(f"    {name:<16} {stats.get('seconds', 0):>8.2f} s  "
              + ", ".join(f"{k}={v}" for k, v in stats.items() if k != "seconds"))
    out["first_run"] = {"seconds": round(first.seconds, 3), "py_peak": first.py_peak_bytes,
                        "rss_peak": first.rss_peak_bytes, "steps": result["steps"]}
    out["rerun"] = {"seconds": round(rerun.seconds, 3), "py_peak": rerun.py_peak_bytes, "steps": result2["steps"]}

    table.add(common.Row("generate book (COPY + SQL)", gen["rows"], gen["seconds"], note="all rows written"))
    table.add(common.Row("run_business_day, first run", n, first.seconds, first.peak_memory,
                         naive.extra["extrapolated_seconds"] if naive else None))
    table.add(common.Row("run_business_day, re-run", n, rerun.seconds, rerun.peak_memory))
    if naive:
        table.add(common.Row(f"baseline: naive ORM loop, sample of {naive.extra['sample']:,}", naive.extra["sample"],
                             naive.seconds, f"rss {common.fmt_bytes(naive.rss_peak_bytes)}"))
        table.add(common.Row(f"baseline extrapolated to {n:,}", n, naive.extra["extrapolated_seconds"], "-",
                             note="sample ms/loan x N"))

    verify = args.verify if args.verify is not None else n <= 100_000
    if verify:
        print("verify_books:")
        with common.measure("verify_books") as vm:
            checks = verify_books()
        bad = [c for c in checks if not c.ok]
        out["verify_books"] = {"ok": not bad, "seconds": round(vm.seconds, 2), "failed": [c.name for c in bad]}
        for c in bad:
            print(f"    FAILED {c.name}: {c.examples[:3]}")
        print(f"    {'all ' + str(len(checks)) + ' checks ok' if not bad else str(len(bad)) + ' checks FAILED'}")

    print()
    print(table.render())
    ms_per_loan = 1000 * first.seconds / n
    at_1m = ms_per_loan * 1_000_000 / 1000
    print(f"\nfirst run: {ms_per_loan:.4f} ms per loan; re-run {rerun.seconds:.2f} s = "
          f"{100 * rerun.seconds / first.seconds:.1f} % of the first")
    verdicts = [common.verdict(at_1m <= 300, f"1M loans ≤ 5 min: {common.fmt_seconds(at_1m)}"
                               + ("" if n >= 1_000_000 else f" (extrapolated linearly from {n:,})"))]
    if naive:
        ratio = naive.extra["extrapolated_seconds"] / first.seconds
        verdicts.append(common.verdict(ratio >= 10, f"≥ 10x the naive per-loan loop: {ratio:,.1f}x"))
    verdicts.append(common.verdict(rerun.seconds <= 0.10 * first.seconds,
                                   f"re-run ≤ 10 % of the first: {100 * rerun.seconds / first.seconds:.1f} %"))
    if verify:
        verdicts.append(common.verdict(out["verify_books"]["ok"], "verify_books all ok after the runs"))
    out["verdicts"] = verdicts
    out["table_markdown"] = table.markdown()
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str), encoding="utf-8")

    if not args.keep:
        from django.db import connection

        with connection.cursor() as cur:
            common.truncate(cur, TABLES)
    return 0 if all(v.startswith("PASS") for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
