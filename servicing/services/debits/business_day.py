"""The debit pipeline's business-day work (the "debits" step of run_business_day), set-based.

1. Incident windows: penalty clock and DPD held still for affected loans (see incidents.freeze_for_day).
2. Unknown debits still unresolved after 2 working days become reconciliation exceptions.
3. The no-debit sweep: every due or overdue unpaid instalment has a debit, a recorded reason
   (DebitSkip), or becomes a MissedDebitException and the borrower is told (debit_missed).
4. The pre-due check: loans due within PRE_DUE_DAYS that will not be debited (no active mandate,
   suspended, amount above the mandate's single limit) are listed for ops and the borrower is warned.
Re-running a date adds nothing: every insert is ON CONFLICT DO NOTHING on a unique key.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.db import connection, transaction

from servicing.domain.money import format_amount_grouped
from servicing.models import Mandate, MissedDebitException, PreDueWarning
from servicing.sql import chunk_settings, read_by_index

from .batches import OUTSTANDING_SQL
from .bulk_notices import notify_many
from .failures import pay_url
from .incidents import freeze_for_day

# Covered = the loan has a debit in flight or in today's batch, a reason recorded today, or the instalment a
# missed-debit exception. Those sets are built once and probed as hashed subplans; the per-loan details
# (retry state, incident hold, mandate) are looked up only for the few rows not covered, so a re-run of
# the date, where everything is covered, costs one pass over the due instalments.
SWEEP_SQL = """
CREATE TEMP TABLE _sweep ON COMMIT DROP AS
WITH todo AS (
    SELECT i.id AS inst_id, i.loan_id, i.due_date, p.auto_debit
      FROM servicing_instalment i
      JOIN servicing_loan l ON l.id = i.loan_id AND l.status IN ('active', 'overdue')
      JOIN servicing_loanproduct p ON p.id = l.product_id
     WHERE i.status IN ('pending', 'partially_paid', 'overdue') AND i.due_date <= %(d)s
), covered_loans AS (
    SELECT x.loan_id FROM servicing_debit x WHERE x.in_flight
    UNION
    SELECT x.loan_id FROM servicing_debit x JOIN servicing_debitbatch b ON b.id = x.batch_id
     WHERE b.business_date = %(d)s AND x.status <> 'cancelled'
    UNION
    SELECT s.loan_id FROM servicing_debitskip s WHERE s.business_date = %(d)s
), marked AS MATERIALIZED (
    SELECT t.*, (t.loan_id IN (SELECT loan_id FROM covered_loans)
                 OR t.inst_id IN (SELECT me.instalment_id FROM servicing_misseddebitexception me)) AS covered
      FROM todo t
)
SELECT t.*,
       CASE WHEN NOT t.covered THEN
       (SELECT CASE WHEN bool_or(r.status = 'scheduled' AND r.next_retry_on > %(d)s) THEN 'retry_scheduled'
                    WHEN bool_or(r.status = 'held') THEN 'incident_hold'
                    WHEN bool_or(r.status IN ('exhausted', 'stopped')) THEN 'no_retry' END
          FROM servicing_retrystate r WHERE r.loan_id = t.loan_id) END AS retry_reason,
       CASE WHEN NOT t.covered THEN
       EXISTS (SELECT 1 FROM servicing_incidentloan il JOIN servicing_incident inc ON inc.id = il.incident_id
                WHERE il.loan_id = t.loan_id AND inc.status = 'open') END AS held,
       CASE WHEN NOT t.covered THEN
       (SELECT m.status FROM servicing_mandate m WHERE m.loan_id = t.loan_id
         ORDER BY (m.status = 'active') DESC, (m.status = 'suspended') DESC, (m.status = 'pending') DESC, m.id DESC
         LIMIT 1) END AS mandate_status
  FROM marked t
"""

RECORD_REASONS_SQL = """
INSERT INTO servicing_debitskip (loan_id, instalment_id, channel_id, business_date, reason, detail, created_at)
SELECT DISTINCT ON (s.loan_id) s.loan_id, s.inst_id, NULL, %(d)s,
       CASE WHEN NOT s.auto_debit THEN 'pay_by_self' WHEN s.held THEN 'incident_hold' ELSE s.retry_reason END,
       'recorded by the no-debit sweep', now()
  FROM _sweep s
 WHERE NOT s.covered AND (NOT s.auto_debit OR s.held OR s.retry_reason IS NOT NULL)
 ORDER BY s.loan_id, s.due_date
ON CONFLICT (loan_id, business_date) DO NOTHING
"""

MISSED_SQL = """
INSERT INTO servicing_misseddebitexception (instalment_id, loan_id, business_date, reason, status,
                                            resolution_note, created_at)
SELECT s.inst_id, s.loan_id, %(d)s,
       CASE COALESCE(s.mandate_status, 'none')
            WHEN 'none' THEN 'no_mandate' WHEN 'cancelled' THEN 'mandate_cancelled'
            WHEN 'suspended' THEN 'mandate_suspended' WHEN 'pending' THEN 'mandate_pending'
            ELSE 'not_in_batch' END,
       'open', '', now()
  FROM _sweep s
 WHERE NOT s.covered AND s.auto_debit AND NOT s.held AND s.retry_reason IS NULL
ON CONFLICT (instalment_id) DO NOTHING
RETURNING id
"""

UNKNOWN_SQL = """
INSERT INTO servicing_reconciliationexception (result_file_id, debit_id, loan_id, line_no, raw_text, reason_code,
                                               reason, status, resolution_note, created_at)
SELECT NULL, d.id, d.loan_id, NULL, '', 'unknown_unresolved',
       'debit ' || d.reference || ' of ' || b.business_date || ' is still unknown after 2 working days: '
       || 'query the bank, then resolve it', 'open', '', now()
  FROM servicing_debit d JOIN servicing_debitbatch b ON b.id = d.batch_id
 WHERE d.in_flight AND d.status = 'unknown' AND b.business_date <= %(cutoff)s
ON CONFLICT (debit_id) WHERE reason_code = 'unknown_unresolved' DO NOTHING
"""

PRE_DUE_INSERT_SQL = f"""
INSERT INTO servicing_preduewarning (loan_id, instalment_id, checked_on, due_date, reason, amount, created_at)
SELECT x.loan_id, x.inst_id, %(d)s, x.due_date, x.reason, x.amount, now()
  FROM (
    SELECT i.loan_id, i.id AS inst_id, i.due_date,
           (SELECT SUM({OUTSTANDING_SQL.replace("i.", "o.")}) FROM servicing_instalment o
             WHERE o.loan_id = i.loan_id AND o.status IN ('pending', 'partially_paid', 'overdue')
               AND o.due_date <= i.due_date) - l.credit_balance AS amount,
           CASE WHEN m.id IS NULL THEN 'no_active_mandate'
                WHEN m.status = 'suspended' THEN 'mandate_suspended'
                WHEN m.single_limit IS NOT NULL AND
                     (SELECT SUM({OUTSTANDING_SQL.replace("i.", "o.")}) FROM servicing_instalment o
                       WHERE o.loan_id = i.loan_id AND o.status IN ('pending', 'partially_paid', 'overdue')
                         AND o.due_date <= i.due_date) - l.credit_balance > m.single_limit
                     THEN 'above_single_limit' END AS reason
      FROM servicing_instalment i
      JOIN servicing_loan l ON l.id = i.loan_id AND l.status IN ('active', 'overdue')
      JOIN servicing_loanproduct p ON p.id = l.product_id AND p.auto_debit
      LEFT JOIN servicing_mandate m ON m.loan_id = i.loan_id AND m.status IN ('active', 'suspended')
     WHERE i.status IN ('pending', 'partially_paid') AND i.due_date > %(d)s AND i.due_date <= %(until)s
  ) x
 WHERE x.reason IS NOT NULL
ON CONFLICT (instalment_id, reason) DO NOTHING
RETURNING id
"""

MISSED_TEXT = {
    "no_mandate": "您尚未签约代扣账户",
    "mandate_cancelled": "您的代扣协议已解约",
    "mandate_suspended": "您的代扣协议已暂停",
    "mandate_pending": "您的代扣协议尚待银行确认",
    "not_in_batch": "本期扣款未能发起",
}

FIX_TEXT = {
    "no_active_mandate": "请签约代扣账户，或在到期日前主动还款",
    "mandate_suspended": "代扣协议已暂停：请联系客服恢复或重新签约，或在到期日前主动还款",
    "above_single_limit": "应还金额超过银行卡单笔限额：请提高限额、更换账户，或在到期日前主动还款",
}


def _unknown_cutoff(d: date) -> date:
    """The latest batch date whose unknown debits are 2 working days old on `d`."""
    from servicing.services.calendar import add_working_days

    c = d
    for _ in range(30):
        if add_working_days(c, 2) <= d:
            return c
        c -= timedelta(days=1)
    return c


@transaction.atomic  # its staging table lives until commit: the whole sweep is one transaction
def sweep(d: date) -> dict:
    stats = freeze_for_day(d)
    with connection.cursor() as cur:
        # The instalments due and still open are few (what fell due is mostly paid), but the planner multiplies
        # "open" by "due by d" as if unrelated and expects millions at 1M loans: it read all 12M instalments
        # (2.5 s of a 1M re-run's 8 s) instead of the open-and-due index, and hashed the loans on disk. Read by
        # index, hashed in memory: 1.1 s; the same at 100k.
        chunk_settings(cur)
        read_by_index(cur)
        cur.execute(UNKNOWN_SQL, {"cutoff": _unknown_cutoff(d)})
        stats["unknown_exceptions"] = cur.rowcount
        cur.execute(SWEEP_SQL, {"d": d})
        cur.execute("SELECT COUNT(*), COUNT(*) FILTER (WHERE covered) FROM _sweep")
        stats["due_or_overdue"], stats["covered"] = cur.fetchone()
        cur.execute(RECORD_REASONS_SQL, {"d": d})
        stats["reasons_recorded"] = cur.rowcount
        cur.execute(MISSED_SQL, {"d": d})
        missed_ids = [r[0] for r in cur.fetchall()]
        cur.execute("DROP TABLE _sweep")
    stats["missed"] = len(missed_ids)
    # a bank cancelling mandates by the thousand: notify_many tells them in one COPY
    missed = []
    for me in MissedDebitException.objects.filter(pk__in=missed_ids).select_related("loan__product", "loan__borrower",
                                                                                     "instalment"):
        inst = me.instalment
        missed.append((me.loan, me, d, {
            "reason": MISSED_TEXT.get(me.reason, me.reason), "due_date": inst.due_date.isoformat(),
            "amount": format_amount_grouped(inst.total_outstanding), "pay_url": pay_url(me.loan),
            "pay_by": max(d, inst.due_date + timedelta(days=me.loan.product.grace_days)).isoformat(),
        }))
    notify_many("debit_missed", missed)
    until = d + timedelta(days=int(settings.REPAYDESK.get("PRE_DUE_DAYS", 3)))
    with connection.cursor() as cur:
        cur.execute(PRE_DUE_INSERT_SQL, {"d": d, "until": until})
        warn_ids = [r[0] for r in cur.fetchall()]
    stats["pre_due_warnings"] = len(warn_ids)
    warnings = list(PreDueWarning.objects.filter(pk__in=warn_ids).select_related("loan__borrower"))
    accounts: dict[int, str] = {}  # the loan's first active or suspended mandate, as loan.mandates.first() would
    for m in Mandate.objects.filter(loan_id__in={w.loan_id for w in warnings},
                                    status__in=["active", "suspended"]).order_by("-pk"):
        accounts[m.loan_id] = m.masked_account
    notify_many("pre_debit_reminder", [(w.loan, w, d, {
        "will_not_debit": "yes", "reason": w.reason, "how_to_fix": FIX_TEXT.get(w.reason, ""),
        "due_date": w.due_date.isoformat(), "amount": format_amount_grouped(w.amount), "pay_url": pay_url(w.loan),
        "account": accounts.get(w.loan_id, "—"),
    }) for w in warnings])
    return stats
