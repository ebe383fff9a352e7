"""Notices' business-day step: reminders that fall due on the date, set-based (one INSERT … SELECT per
channel with ON CONFLICT on the dedupe key), so re-running a day queues nothing new; plus housekeeping
(stale claims, the settlement KPI)."""

from __future__ import annotations

from datetime import date, timedelta

from django.db import connection
from django.utils import timezone

from notices.catalog import EVENTS
from notices.conf import business, conf, public_url

from .events import debit_line
from .rules import next_allowed_time

PRE_DEBIT_SQL = """
WITH due AS MATERIALIZED (
    -- the instalments falling due, less those an earlier run of the day already queued a reminder for: on a
    -- re-run nothing is left to join, and the loans below are then looked up by key, not hashed whole
    SELECT i.* FROM servicing_instalment i
     WHERE i.due_date = %(due)s AND i.status IN ('pending', 'partially_paid')
       AND NOT EXISTS (SELECT 1 FROM notices_notice q
                        WHERE q.dedupe_key = 'pre_debit_reminder:servicing.instalment:' || i.id || ':' || %(ds)s
                                             || ':' || %(channel)s)
), todo AS (
    SELECT i.id AS inst_id, l.id AS loan_id, l.contract_no, b.id AS borrower_id, b.name,
           CASE WHEN b.language = 'en' THEN 'en' ELSE 'zh-hans' END AS lang,
           to_char(i.due_date, 'YYYY-MM-DD') AS due,
           to_char(i.principal_due + i.interest_due + i.fee_due + i.penalty_accrued + i.compound_accrued
                   - i.principal_paid - i.interest_paid - i.fee_paid - i.penalty_paid - i.compound_paid
                   - i.principal_waived - i.interest_waived - i.fee_waived - i.penalty_waived
                   - i.compound_waived, 'FM999,999,999,990.00') AS amount,
           CASE WHEN length(m.account_no) >= 8
                THEN left(m.account_no, 4) || ' **** **** ' || right(m.account_no, 4) ELSE '****' END AS acct,
           p.id IS NOT NULL AS opted_out
      FROM due i
     CROSS JOIN LATERAL (SELECT x.id, x.contract_no, x.product_id, x.borrower_id FROM servicing_loan x
                          WHERE x.id = i.loan_id AND x.status IN ('active', 'overdue') OFFSET 0) l
      JOIN servicing_loanproduct pr ON pr.id = l.product_id AND pr.auto_debit
      JOIN servicing_borrower b ON b.id = l.borrower_id
      JOIN servicing_mandate m ON m.loan_id = l.id AND m.status = 'active'
      LEFT JOIN notices_channelpreference p
             ON p.borrower_id = b.id AND p.channel = %(channel)s AND p.opted_out AND %(channel)s <> 'in_app'
       -- the debits pre-due check already told this borrower today (e.g. "will not be debited"). NOT IN is
       -- planned as one hashed subplan; NOT EXISTS became a nested-loop anti join once today's notices were
       -- estimated at 1 row (6.9 s per channel at 1M loans).
     WHERE l.id NOT IN (SELECT x.loan_id FROM notices_notice x
                         WHERE x.event = 'pre_debit_reminder' AND x.on_date = %(d)s
                           AND x.object_type <> 'servicing.instalment' AND x.loan_id IS NOT NULL)
)
INSERT INTO notices_notice
    (event, channel, language, borrower_id, loan_id, object_type, object_id, on_date, dedupe_key, status,
     collection, context, scheduled_for, attempts, subject, body, provider_ref, last_error, created_at)
SELECT 'pre_debit_reminder', %(channel)s, t.lang, t.borrower_id, t.loan_id, 'servicing.instalment',
       t.inst_id::text, %(d)s,
       'pre_debit_reminder:servicing.instalment:' || t.inst_id || ':' || %(ds)s || ':' || %(channel)s,
       CASE WHEN t.opted_out THEN 'suppressed' ELSE 'queued' END, false,
       jsonb_build_object(
           'borrower_name', t.name,
           'contract_no', CASE WHEN length(t.contract_no) > 8
                               THEN left(t.contract_no, 4) || '****' || right(t.contract_no, 4)
                               ELSE t.contract_no END,
           'lender_name', %(lender)s, 'service_phone', %(phone)s, 'pay_url', %(pay_url)s,
           'amount', t.amount, 'due_date', t.due, 'account', t.acct,
           'debit_line', replace(replace(CASE WHEN t.lang = 'en' THEN %(line_en)s ELSE %(line_zh)s END,
                                         '{due}', t.due), '{acct}', t.acct)),
       %(scheduled)s, 0, '', '', '',
       CASE WHEN t.opted_out THEN 'borrower opted out of ' || %(channel)s ELSE '' END,
       now()
  FROM todo t
ON CONFLICT (dedupe_key) DO NOTHING
"""


def queue_pre_debit_reminders(d: date, *, now=None) -> dict:
    """pre_debit_reminder for instalments due PRE_DUE_DAYS after `d` on loans with an active mandate."""
    due = d + timedelta(days=int(business("PRE_DUE_DAYS", 3)))
    scheduled = next_allowed_time(now or timezone.now())
    queued = 0
    with connection.cursor() as cur:
        for channel in EVENTS["pre_debit_reminder"].channels:
            cur.execute(PRE_DEBIT_SQL, {
                "channel": channel, "d": d, "ds": d.isoformat(), "due": due, "scheduled": scheduled,
                "lender": business("LENDER_NAME", ""), "phone": conf("SERVICE_PHONE"),
                "pay_url": public_url(conf("PAY_PATH")),
                "line_zh": debit_line("zh-hans", due_date="{due}", account="{acct}"),
                "line_en": debit_line("en", due_date="{due}", account="{acct}")})
            queued += cur.rowcount
    if queued and scheduled <= (now or timezone.now()):
        from .outbox import wake_dispatcher

        wake_dispatcher()
    return {"pre_debit_reminders": queued, "due_date": due.isoformat()}


def step(d: date) -> dict:
    from .dispatch import release_stale_claims
    from .kpi import refresh_settlement_kpi

    stats = queue_pre_debit_reminders(d)
    stats["released_claims"] = release_stale_claims()
    stats["kpi_days"] = refresh_settlement_kpi(d - timedelta(days=7), d)
    return stats
