"""Posting succeeded debits as payments through the bank clearing account, set-based.

The waterfall of servicing.domain.allocation (oldest instalment first, the product's component order,
the rest to credit balance) is done in one SQL statement for a whole chunk of debits, writing what the
per-loan `post_payment` writes (payment, allocations, instalments, loan, each loan's journal lines) with one
difference: the chunk's payments of one value date share one journal entry (批量入账), whose clearing line is
the money the bank paid in for them all, and beneath it each loan's receivable and credit-balance lines. The
bank pays a file in as one sum; an entry and a clearing line per payment (a million each for a big file) said
nothing more. One payment per loan in such an entry, so a payment's part of it is its loan's lines
(`servicing.services.payments.payment_legs`, which a reversal mirrors).

A loan takes the set-based path only when nothing needs to be brought to the value date first (every
instalment due by then is billed and no penalty can be pending); every other loan goes through the
per-loan service `servicing.services.payments.post_payment`. Both are idempotent on the payment
reference (= the debit reference), so re-running a chunk never posts twice.
"""

from __future__ import annotations

import json
import logging
import time

from django.db import connection

from servicing.domain.allocation import COMPONENTS
from servicing.domain.money import ZERO
from servicing.models import Debit, Loan, LoanProduct
from servicing.models.ledger import Account, EntryKind
from servicing.models.loans import LoanStatus
from servicing.services.ledger import Leg, post_entry

from .batches import instalment_status_sql

logger = logging.getLogger(__name__)

def _due_sql() -> str:
    """What each instalment due by a debit's value date still owes, per component and in all, and whether it keeps
    the debit off the set-based path (an instalment not billed yet, or penalty to accrue first)."""
    owed = {c: f"GREATEST(i.{c}_{'accrued' if c in ('penalty', 'compound') else 'due'} - i.{c}_paid - i.{c}_waived, 0)"
            for c in COMPONENTS}
    return f"""
CREATE TEMP TABLE _due ON COMMIT DROP AS
SELECT q.*, {" + ".join(f"q.{c}" for c in COMPONENTS)} AS owed
  FROM (SELECT p.debit_id, i.id AS inst_id, i.due_date,
               (NOT i.billed
                OR (i.status <> 'paid' AND i.due_date + p.grace_days < p.value_date
                    AND GREATEST(COALESCE(i.penalty_accrued_through, i.due_date), i.due_date) < p.value_date - 1))
               AS blocks,
               {", ".join(f"{expr} AS {c}" for c, expr in owed.items())}
          FROM _pay p
          JOIN servicing_instalment i ON i.loan_id = p.loan_id AND i.status <> 'superseded'
                                     AND i.due_date <= p.value_date
                                     AND i.loan_id = ANY(ARRAY(SELECT loan_id FROM _pay))  -- by key
       ) q
"""


# "x = ANY(ARRAY(SELECT … FROM a chunk's temp table))" beside a join condition reads the book's big tables by key
# for the chunk's 20k rows; without it the planner may hash-join a whole table (a seq scan of 1M loans or 2M
# instalments per chunk, most of a 1M-row import's time) or merge-join along a primary key from its start.
#
# Three steps, the book read once: the debits not yet posted with their loan (_pay, each loan's first debit of
# the chunk provisionally on the set-based path), the instalments due by their value date with what each owes
# and whether it keeps its loan off the set-based path (_due: not billed yet, or penalty pending), then the
# debits of such loans sent to the per-loan path.
ELIGIBLE_SQL = [
    """CREATE TEMP TABLE _pay ON COMMIT DROP AS
       SELECT a.debit_id, a.loan_id, a.amount, a.value_date, a.reference, l.product_id, pr.grace_days,
              (l.status IN ('active', 'overdue') AND a.value_date >= l.disbursed_on
               AND row_number() OVER (PARTITION BY a.loan_id ORDER BY a.debit_id) = 1) AS fast
         FROM {source} a
        CROSS JOIN LATERAL (SELECT x.status, x.disbursed_on, x.product_id FROM servicing_loan x
                             WHERE x.id = a.loan_id OFFSET 0) l
         JOIN servicing_loanproduct pr ON pr.id = l.product_id
        WHERE NOT EXISTS (SELECT 1 FROM servicing_payment p WHERE p.reference = a.reference
                            AND p.reference = ANY(ARRAY(SELECT reference FROM {source})))""",
    "ANALYZE _pay (debit_id, loan_id, fast)",
    _due_sql(),
    "UPDATE _pay SET fast = false WHERE fast AND debit_id IN (SELECT debit_id FROM _due WHERE blocks)",
]


def _waterfall_sql() -> str:
    """The waterfall for a chunk: one row per debit and instalment it pays, with what it pays per component.

    Instalments in due order take what is left of the debit (a running sum of what each still owes); within
    an instalment, a component takes what is left after the components its product puts ahead of it.
    """
    ahead = {c: " + ".join(f"CASE WHEN o.pos_{x} < o.pos_{c} THEN w.{x} ELSE 0 END" for x in COMPONENTS if x != c)
             for c in COMPONENTS}
    return f"""
CREATE TEMP TABLE _alloc ON COMMIT DROP AS
WITH orders AS MATERIALIZED (  -- each product's position of each component in its allocation order
    SELECT pr.id AS product_id,
           {", ".join(f"{LoanProduct.order_position_sql('pr', repr(c))} AS pos_{c}" for c in COMPONENTS)}
      FROM servicing_loanproduct pr
), running AS (  -- the debits of the set-based path: none of their instalments blocks
    SELECT w.*, p.amount, p.value_date, p.product_id,
           SUM(w.owed) OVER (PARTITION BY w.debit_id ORDER BY w.due_date, w.inst_id
                             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - w.owed AS before
      FROM _due w JOIN _pay p ON p.debit_id = w.debit_id AND p.fast
), paid AS (
    SELECT w.*, LEAST(w.owed, w.amount - w.before) AS amt
      FROM running w WHERE w.owed > 0 AND w.amount - w.before > 0
)
SELECT w.debit_id, w.inst_id, w.value_date, w.amt,
       {", ".join(f"LEAST(w.{c}, GREATEST(w.amt - ({ahead[c]}), 0)) AS {c}" for c in COMPONENTS)}
  FROM paid w JOIN orders o ON o.product_id = w.product_id
"""


ALLOC_SQL = _waterfall_sql()

# the allocation's component columns, as the statements below name them ({status}: an instalment's status and
# paid_on once the allocation is added)
_PARTS = {"{status}": instalment_status_sql(paid_now="x.amt", waived_now="0", as_of="x.value_date"), "{parts}": ", ".join(COMPONENTS), "{a_parts}": ", ".join(f"a.{c}" for c in COMPONENTS),
          "{parts_sum}": ", ".join(f"SUM({c}) AS {c}" for c in COMPONENTS),
          "{a_parts_or_zero}": ", ".join(f"COALESCE(a.{c}, 0) AS {c}" for c in COMPONENTS),
          "{s_parts_values}": ", ".join(f"('{c}', s.{c})" for c in COMPONENTS)}


def _with_parts(sql: str) -> str:
    for name, value in _PARTS.items():
        sql = sql.replace(name, value)
    return sql


POST_SQL = [_with_parts(sql) for sql in [
    # entry and payment ids are drawn from their sequences up front, so every later statement joins on them
    # (no RETURNING … joined back on text keys)
    """CREATE TEMP TABLE _paysum ON COMMIT DROP AS
       WITH entries AS MATERIALIZED (  -- one journal entry per value date of the chunk
           SELECT v.value_date, nextval('{entry_seq}') AS entry_id
             FROM (SELECT DISTINCT value_date FROM _pay WHERE fast ORDER BY 1) v)
       SELECT p.debit_id, p.loan_id, p.amount, p.value_date, p.reference, COALESCE(a.applied, 0) AS applied,
              {a_parts_or_zero}, e.entry_id, nextval('{payment_seq}') AS payment_id
         FROM _pay p JOIN entries e ON e.value_date = p.value_date
         LEFT JOIN (SELECT debit_id, SUM(amt) AS applied, {parts_sum} FROM _alloc GROUP BY debit_id) a
                ON a.debit_id = p.debit_id
        WHERE p.fast
        ORDER BY p.loan_id""",
    "ANALYZE _paysum (debit_id, loan_id)",
    # the entry's key: its first payment's reference (unique, as a payment belongs to one entry); no loan of its own
    """INSERT INTO servicing_journalentry (id, kind, loan_id, value_date, idempotency_key, memo, created_at)
       SELECT s.entry_id, 'payment', NULL, s.value_date, 'bank_payments:' || MIN(s.reference),
              left('auto-debits: ' || COUNT(*) || ' payments, ' || MIN(s.reference) || ' … ' || MAX(s.reference), 200),
              now()
         FROM _paysum s GROUP BY s.entry_id, s.value_date ORDER BY s.entry_id""",
    """INSERT INTO servicing_journalline (entry_id, loan_id, account, amount)
       SELECT entry_id, loan_id, account, amount FROM (
           SELECT s.entry_id, NULL::bigint AS loan_id, 'clearing_bank' AS account, SUM(s.amount) AS amount, 0 AS ord
             FROM _paysum s GROUP BY s.entry_id
           UNION ALL
           SELECT s.entry_id, s.loan_id, 'credit_balance', s.applied - s.amount, 9
             FROM _paysum s WHERE s.applied <> s.amount
           UNION ALL
           SELECT s.entry_id, s.loan_id, x.component || '_receivable', -x.amount, 1
             FROM _paysum s CROSS JOIN LATERAL (VALUES {s_parts_values}) AS x(component, amount)
            WHERE x.amount <> 0) q
        ORDER BY entry_id, ord, account""",
    """INSERT INTO servicing_payment (id, reference, loan_id, channel, amount, value_date, prepay_mode,
                                     applied_amount, credited_amount, entry_id, reversed, created_at, note)
       SELECT s.payment_id, s.reference, s.loan_id, 'bank', s.amount, s.value_date, '', s.applied,
              s.amount - s.applied, s.entry_id, false, now(), 'auto-debit'
         FROM _paysum s ORDER BY s.payment_id""",
    """CREATE TEMP TABLE _pmt ON COMMIT DROP AS SELECT payment_id AS id, reference, debit_id FROM _paysum""",
    """INSERT INTO servicing_allocation (entry_id, payment_id, instalment_id, {parts})
       SELECT s.entry_id, s.payment_id, a.inst_id, {a_parts}
         FROM _alloc a JOIN _paysum s ON s.debit_id = a.debit_id
        ORDER BY s.entry_id, a.inst_id""",
    """UPDATE servicing_instalment i
          SET principal_paid = i.principal_paid + x.principal, interest_paid = i.interest_paid + x.interest,
              fee_paid = i.fee_paid + x.fee, penalty_paid = i.penalty_paid + x.penalty,
              compound_paid = i.compound_paid + x.compound,
              {status}
         FROM _alloc x
        WHERE i.id = x.inst_id AND i.id = ANY(ARRAY(SELECT inst_id FROM _alloc))""",
    """WITH s AS (SELECT loan_id, MAX(value_date) AS vd, SUM(amount - applied) AS credit
                   FROM _paysum GROUP BY loan_id),
            o AS (SELECT i.loan_id, MIN(i.due_date) AS oldest FROM servicing_instalment i
                   WHERE i.status = 'overdue' AND i.loan_id IN (SELECT loan_id FROM s) GROUP BY i.loan_id),
            od AS (SELECT s.loan_id, s.vd, s.credit, GREATEST(COALESCE(s.vd - o.oldest, 0), 0) AS dpd
                     FROM s LEFT JOIN o ON o.loan_id = s.loan_id)
       UPDATE servicing_loan l
          SET credit_balance = l.credit_balance + od.credit, dpd = od.dpd,
              status = CASE WHEN od.dpd > 0 THEN 'overdue' ELSE 'active' END
         FROM od WHERE l.id = od.loan_id AND l.id = ANY(ARRAY(SELECT loan_id FROM _paysum))  -- by key, not a scan
          -- a loan whose figures do not change is not rewritten (a new row version in every index of the loan,
          -- for nothing; its history trigger would record nothing either)
          AND (od.credit <> 0 OR l.dpd <> od.dpd
               OR l.status <> CASE WHEN od.dpd > 0 THEN 'overdue' ELSE 'active' END)""",
]]

# One audit row for the set-based payments of a chunk, on what they came from (the result file and its lines):
# each payment row names its debit, and each debit its file line, so the row per payment the per-loan
# service writes would repeat them, a million times for a big file.
AUDIT_SQL = """
INSERT INTO servicing_auditlog (at, actor_label, action, object_type, object_id, reason, data)
SELECT now(), %(actor)s, 'payments.posted', %(object_type)s, %(object_id)s, '',
       %(data)s::jsonb || jsonb_build_object('payments', COUNT(*)::text, 'amount', SUM(amount)::text,
                                            'channel', 'bank')
  FROM _paysum HAVING COUNT(*) > 0
"""


def _sequences(cur) -> dict[str, str]:
    cur.execute("SELECT pg_get_serial_sequence('servicing_journalentry', 'id'), "
                "pg_get_serial_sequence('servicing_payment', 'id')")
    entry, payment = cur.fetchone()
    return {"entry": entry, "payment": payment}


def post_succeeded_debits(source: str, *, audit_on: tuple[str, str], audit_data: dict, actor: str = "system",
                          before_slow=None) -> dict:
    """Post payments for the succeeded debits in temp table `source`.

    `source` has columns (debit_id, loan_id, amount, value_date, reference). Returns counts and the ids of
    the payments created (for receipts). The set-based payments are audited in one row on `audit_on`
    (object type, id) with `audit_data`, their count and sum. `before_slow(cursor)`, if given, runs after
    the set-based payments (temp table _pmt: id, reference, debit_id) and before the per-loan path; without
    it, the debits get their payment_id here.
    """

    timings = []
    with connection.cursor() as cur:
        seqs = _sequences(cur)
        post = [s.replace("{entry_seq}", seqs["entry"]).replace("{payment_seq}", seqs["payment"]) for s in POST_SQL]
        for sql in [*(s.format(source=source) for s in ELIGIBLE_SQL), ALLOC_SQL,
                    # one debit of a loan per chunk is posted here (ELIGIBLE_SQL's row_number), so an instalment
                    # is paid once: the instalment update below adds each row's figures, and would add only one
                    # of two rows for the same instalment
                    "CREATE UNIQUE INDEX ON _alloc (inst_id)", "ANALYZE _alloc (debit_id, inst_id)", *post]:
            t0 = time.perf_counter()
            cur.execute(sql)
            timings.append(round(time.perf_counter() - t0, 3))
        cur.execute(AUDIT_SQL, {"actor": actor, "object_type": audit_on[0], "object_id": str(audit_on[1]),
                                "data": json.dumps({k: str(v) for k, v in audit_data.items()})})
        if before_slow is None:
            cur.execute("UPDATE servicing_debit d SET payment_id = pm.id FROM _pmt pm WHERE d.id = pm.debit_id")
        else:
            before_slow(cur)
        logger.info("set-based posting timings per statement: %s", timings)
        cur.execute("SELECT id FROM _pmt")
        fast_ids = [r[0] for r in cur.fetchall()]
        cur.execute("""SELECT DISTINCT s.loan_id FROM _paysum s
                        WHERE NOT EXISTS (SELECT 1 FROM servicing_instalment i WHERE i.loan_id = s.loan_id
                                           AND i.loan_id = ANY(ARRAY(SELECT loan_id FROM _paysum))
                                           AND i.status IN ('pending', 'partially_paid', 'overdue'))""")
        settle_ids = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT debit_id FROM _pay WHERE NOT fast")
        slow = [r[0] for r in cur.fetchall()]
        cur.execute("DROP TABLE _pay, _due, _alloc, _paysum, _pmt")
    from servicing.services.settlement import settle_loans

    settle_loans(settle_ids)
    slow_ids = [post_debit_payment(debit).pk for debit in Debit.objects.filter(pk__in=slow).select_related("loan")]
    return {"fast": len(fast_ids), "slow": len(slow_ids), "payment_ids": fast_ids + slow_ids, "fast_ids": fast_ids}


def post_debit_payment(debit: Debit):
    """Per-loan path: post one succeeded debit through the payment service (money taken is never lost:
    on a loan already settled it becomes a refund to pay out)."""
    from servicing.services.payments import post_payment

    value_date = debit.settled_on or debit.batch.business_date
    result = post_payment(loan=debit.loan, amount=debit.amount, channel="bank", value_date=value_date,
                          reference=debit.reference, note="auto-debit", allow_settled=True)
    Debit.objects.filter(pk=debit.pk).update(payment=result.payment)
    loan = Loan.objects.get(pk=debit.loan_id)
    if result.created and loan.status in (LoanStatus.SETTLED, LoanStatus.WRITTEN_OFF) and loan.credit_balance > ZERO:
        post_entry(kind=EntryKind.REFUND, key=f"refund:debit:{debit.pk}", value_date=value_date, loan=loan,
                   memo=f"debit {debit.reference} on a settled loan, to refund",
                   legs=[Leg(Account.CREDIT_BALANCE, loan.credit_balance),
                         Leg(Account.REFUND_PAYABLE, -loan.credit_balance)])
        Loan.objects.filter(pk=loan.pk).update(credit_balance=ZERO)
    return result.payment
