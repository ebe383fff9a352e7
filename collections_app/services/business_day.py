"""Collections' business-day step: promises, plans, cases opened / updated / cured / closed, stages,
escalation requests, priority, assignment and the day's automatic messages.

Set-based: each part is one SQL statement over all cases (driven by the overdue loans through the
loans' status index, so the work grows with the delinquent book, not the whole book). Idempotent per
date: timeline events and automatic messages carry dedupe keys, updates are guarded, so re-running a
date adds nothing. Grace ends are computed in Python per (product, due date) — they need the working-day
calendar — and joined in as arrays, exactly like the core's penalty accrual.
"""

from __future__ import annotations

import json
import time as _time
from datetime import date, datetime, time, timedelta

from django.db import connection, transaction

from collections_app import rules
from collections_app.models import StrategyStage
from servicing.models.loans import LoanProduct
from servicing.queueing import enqueue_with_transaction
from servicing.services.accrual import grace_end
from servicing.sql import execute as _exec
from servicing.sql import fetch_all as _rows
from servicing.sql import planner_setting, refresh_stats

OPEN = "('open', 'paused')"
# the loan is affected by a channel incident whose window holds the date (servicing.services.debits.incidents)
IN_INCIDENT_WINDOW = """SELECT 1 FROM servicing_incidentloan il JOIN servicing_incident inc ON inc.id = il.incident_id
                         WHERE il.loan_id = {loan} AND inc.window_start <= {d}
                           AND (inc.window_end IS NULL OR inc.window_end >= {d})"""
BUCKET_SQL = """CASE WHEN {d} = 0 THEN 'M0' WHEN {d} <= 30 THEN 'M1' WHEN {d} <= 60 THEN 'M2'
                     WHEN {d} <= 90 THEN 'M3' ELSE 'M3+' END"""


# --------------------------------------------------------------------------------------------------
# The day's snapshot of the overdue book
# --------------------------------------------------------------------------------------------------

def _snapshot(d: date) -> int:
    """coll_od: one row per overdue loan with DPD, overdue by component and whether grace has passed."""
    _exec("DROP TABLE IF EXISTS coll_od")
    n = _exec("""
        CREATE TEMP TABLE coll_od ON COMMIT DROP AS
        SELECT l.id AS loan_id, l.borrower_id, l.product_id, pr.collection_strategy AS strategy,
               pr.grace_days, MIN(i.due_date) AS oldest, %(d)s::date - MIN(i.due_date) AS dpd,
               SUM(i.principal_due - i.principal_paid - i.principal_waived) AS principal,
               SUM(CASE WHEN i.billed THEN i.interest_due - i.interest_paid - i.interest_waived ELSE 0 END) AS interest,
               SUM(CASE WHEN i.billed THEN i.fee_due - i.fee_paid - i.fee_waived ELSE 0 END) AS fee,
               SUM(i.penalty_accrued - i.penalty_paid - i.penalty_waived) AS penalty,
               SUM(i.compound_accrued - i.compound_paid - i.compound_waived) AS compound,
               false AS past_grace
          FROM servicing_loan l
          JOIN servicing_loanproduct pr ON pr.id = l.product_id
          JOIN servicing_instalment i ON i.loan_id = l.id AND i.status = 'overdue' AND i.due_date < %(d)s
         WHERE l.status = 'overdue'
         GROUP BY l.id, pr.id""", {"d": d})
    pairs = _rows("SELECT DISTINCT product_id, oldest FROM coll_od")
    if pairs:
        products = {p.pk: p for p in LoanProduct.objects.filter(pk__in={p for p, _ in pairs})}
        past = [(pid, due) for pid, due in pairs if d > grace_end(due, products[pid])]
        if past:
            _exec("""UPDATE coll_od o SET past_grace = true
                       FROM unnest(%(pids)s::bigint[], %(dues)s::date[]) AS g(product_id, oldest)
                      WHERE o.product_id = g.product_id AND o.oldest = g.oldest""",
                  {"pids": [p for p, _ in past], "dues": [x for _, x in past]})
    _exec("CREATE INDEX ON coll_od (loan_id)")
    _exec("ANALYZE coll_od")
    return n


# --------------------------------------------------------------------------------------------------
# Parts of the step
# --------------------------------------------------------------------------------------------------

def _payment_events(d: date, p: dict) -> int:
    """Payments of the last week on loans with an open case go on the timeline (once each)."""
    return _exec(f"""
        INSERT INTO collections_app_caseevent (case_id, kind, at, business_date, detail, data, dedupe_key)
        SELECT c.id, 'payment', %(at)s, pay.value_date, pay.channel || ' ' || pay.amount,
               jsonb_build_object('amount', pay.amount::text, 'payment', pay.id::text), 'payment:' || pay.id
          FROM collections_app_collectioncase c
          JOIN servicing_payment pay ON pay.loan_id = c.loan_id
         WHERE c.status IN {OPEN} AND pay.value_date BETWEEN %(week)s AND %(d)s AND NOT pay.reversed
        ON CONFLICT (dedupe_key) DO NOTHING""", p)


def _debit_failure_events(d: date, p: dict) -> int:
    """Failed debit attempts of the last week on loans with an open case go on the timeline (once each);
    the priority score counts them."""
    return _exec(f"""
        INSERT INTO collections_app_caseevent (case_id, kind, at, business_date, detail, data, dedupe_key)
        SELECT c.id, 'debit_failed', %(at)s, deb.result_on,
               deb.category || ' ' || deb.result_code || ' ' || LEFT(deb.result_message, 80),
               jsonb_build_object('amount', deb.amount::text, 'category', deb.category, 'debit', deb.id::text),
               'debit_failed:debit:' || deb.id
          FROM collections_app_collectioncase c
          JOIN servicing_debit deb ON deb.loan_id = c.loan_id
         -- a failed answer is final: it is the debit's own, never an earlier one
         WHERE c.status IN {OPEN} AND deb.status = 'failed' AND deb.result_on BETWEEN %(week)s AND %(d)s
        ON CONFLICT (dedupe_key) DO NOTHING""", p)


def _hardship(d: date, p: dict) -> dict:
    """Plans and deferrals in force: completed when their instalments are paid, broken on re-default."""
    rows = _rows("""
        WITH done AS (
            UPDATE collections_app_hardshiparrangement h
               SET status = CASE WHEN NOT EXISTS (SELECT 1 FROM servicing_instalment i
                                                   WHERE i.id = ANY(h.instalment_ids) AND i.status NOT IN ('paid', 'superseded'))
                                 THEN 'completed' ELSE 'broken' END,
                   ended_on = %(d)s
             WHERE h.status = 'active'
               AND (NOT EXISTS (SELECT 1 FROM servicing_instalment i
                                 WHERE i.id = ANY(h.instalment_ids) AND i.status NOT IN ('paid', 'superseded'))
                    OR EXISTS (SELECT 1 FROM coll_od o WHERE o.loan_id = h.loan_id AND o.past_grace))
            RETURNING h.id, h.case_id, h.status
        ), ev AS (
            INSERT INTO collections_app_caseevent (case_id, kind, at, business_date, detail, data, dedupe_key)
            SELECT case_id, 'hardship', %(at)s, %(d)s, 'plan ' || status,
                   jsonb_build_object('arrangement', id::text, 'status', status), 'hardship:' || id || ':' || status
              FROM done
            ON CONFLICT (dedupe_key) DO NOTHING
        )
        SELECT status, case_id FROM done""", p)
    broken = [case_id for status, case_id in rows if status == "broken"]
    if broken:
        _escalate_one(d, p, broken, "plan_broken")
    return {"plans_completed": sum(1 for s, _ in rows if s == "completed"), "plans_broken": len(broken)}


def _promises(d: date, p: dict) -> dict:
    """Kept when payments since the promise reach the amount by its date; broken the day after, unpaid."""
    rows = _rows("""
        WITH paid AS (
            SELECT pr.id, COALESCE(SUM(pay.amount), 0) AS paid
              FROM collections_app_promisetopay pr
              LEFT JOIN servicing_payment pay ON pay.loan_id = pr.loan_id AND NOT pay.reversed
                    AND pay.value_date BETWEEN pr.promised_on AND LEAST(pr.due_date, %(d)s)
             WHERE pr.status = 'pending' AND pr.promised_on <= %(d)s
             GROUP BY pr.id
        ), upd AS (
            UPDATE collections_app_promisetopay pr
               SET paid_amount = paid.paid,
                   status = CASE WHEN paid.paid >= pr.amount THEN 'kept' WHEN pr.due_date < %(d)s THEN 'broken'
                                 ELSE 'pending' END,
                   resolved_on = CASE WHEN paid.paid >= pr.amount OR pr.due_date < %(d)s THEN %(d)s::date END
              FROM paid
             WHERE pr.id = paid.id AND (paid.paid <> pr.paid_amount OR paid.paid >= pr.amount OR pr.due_date < %(d)s)
            RETURNING pr.id, pr.case_id, pr.status, pr.amount
        ), ev AS (
            INSERT INTO collections_app_caseevent (case_id, kind, at, business_date, detail, data, dedupe_key)
            SELECT case_id, CASE status WHEN 'kept' THEN 'promise_kept' ELSE 'promise_broken' END, %(at)s, %(d)s,
                   amount::text, jsonb_build_object('promise', id::text), 'promise:' || id || ':' || status
              FROM upd WHERE status IN ('kept', 'broken')
            ON CONFLICT (dedupe_key) DO NOTHING
        )
        SELECT status, case_id FROM upd WHERE status IN ('kept', 'broken')""", p)
    broken = [case_id for status, case_id in rows if status == "broken"]
    if broken:
        _exec("""UPDATE collections_app_collectioncase SET broken_promises = broken_promises + 1
                  WHERE id = ANY(%(ids)s)""", {"ids": broken})
        _escalate_one(d, p, broken, "promise_broken")
    return {"promises_kept": sum(1 for s, _ in rows if s == "kept"), "promises_broken": len(broken)}


def _escalate_one(d: date, p: dict, case_ids: list[int], why: str) -> None:
    """Move open (not paused) cases one stage up; a stage that needs approval becomes a request instead."""
    q = {**p, "ids": case_ids, "why": why}
    _exec("""
        WITH nxt AS (
            SELECT DISTINCT ON (c.id) c.id, c.stage AS old, s.stage_no AS new, s.requires_approval
              FROM collections_app_collectioncase c
              JOIN servicing_loan l ON l.id = c.loan_id
              JOIN servicing_loanproduct pr ON pr.id = l.product_id
              JOIN collections_app_strategystage s ON s.strategy = pr.collection_strategy AND s.is_active
                   AND s.stage_no > c.stage
             WHERE c.id = ANY(%(ids)s) AND c.status = 'open'
             ORDER BY c.id, s.stage_no
        ), upd AS (
            UPDATE collections_app_collectioncase c SET stage = nxt.new, stage_since = %(d)s, next_action_on = %(d)s
              FROM nxt WHERE c.id = nxt.id AND NOT nxt.requires_approval
            RETURNING c.id, nxt.old, nxt.new
        ), req AS (
            INSERT INTO collections_app_escalationrequest (case_id, to_stage, status, requested_on, reason)
            SELECT id, new, 'pending', %(d)s, %(why)s FROM nxt WHERE requires_approval
            ON CONFLICT (case_id) WHERE status = 'pending' DO NOTHING
        )
        INSERT INTO collections_app_caseevent (case_id, kind, at, business_date, detail, data, dedupe_key)
        SELECT id, 'stage', %(at)s, %(d)s, old || ' → ' || new,
               jsonb_build_object('from', old::text, 'to', new::text, 'why', %(why)s),
               'stage:' || id || ':' || %(ds)s || ':' || new
          FROM upd
        ON CONFLICT (dedupe_key) DO NOTHING""", q)


def _close_cured(d: date, p: dict) -> int:
    """Cases whose loan is no longer overdue close (cured / settled / written off) — unless a plan is in force."""
    return _exec(f"""
        WITH closed AS (
            UPDATE collections_app_collectioncase c
               SET status = 'closed', closed_on = %(d)s, pause_reason = '', next_action_on = NULL, dpd = 0,
                   close_reason = CASE l.status WHEN 'settled' THEN 'settled' WHEN 'written_off' THEN 'written_off'
                                  ELSE 'cured' END, updated_on = %(d)s
              FROM servicing_loan l
             WHERE l.id = c.loan_id AND c.status IN {OPEN}
               AND NOT EXISTS (SELECT 1 FROM coll_od o WHERE o.loan_id = c.loan_id)
               AND (l.status IN ('settled', 'written_off')
                    OR NOT EXISTS (SELECT 1 FROM collections_app_hardshiparrangement h
                                    WHERE h.case_id = c.id AND h.status = 'active'))
            RETURNING c.id, c.close_reason
        ), req AS (
            UPDATE collections_app_escalationrequest r SET status = 'rejected', decided_on = %(d)s,
                   reason = 'case closed' FROM closed WHERE r.case_id = closed.id AND r.status = 'pending'
        )
        INSERT INTO collections_app_caseevent (case_id, kind, at, business_date, detail, data, dedupe_key)
        SELECT id, 'closed', %(at)s, %(d)s, close_reason, jsonb_build_object('reason', close_reason),
               'close:' || id
          FROM closed
        ON CONFLICT (dedupe_key) DO NOTHING""", p)


def _open_new(d: date, p: dict) -> int:
    """A case for every loan past grace without an open one; a loan with an earlier case re-opens.

    The cases' table is read by index whatever its statistics say: on the first day of a big delinquent cohort
    (a new book, an outage's thousands of loans) they still say "empty", and each new case's checks scanned the
    heap the statement itself was filling (quadratic: 22.8 s for 50k cases); then analyzed, so that the rest of
    the step plans with the new cases counted."""
    with connection.cursor() as cur, planner_setting(cur, "enable_seqscan", "off"):
        opened = _open_new_sql(p)
    refresh_stats("collections_app_collectioncase", "loan_id, status, stage, next_action_on, borrower_id", opened)
    return opened


def _open_new_sql(p: dict) -> int:
    return _exec(f"""
        WITH opened AS (
            INSERT INTO collections_app_collectioncase
                   (loan_id, borrower_id, status, pause_reason, opened_on, close_reason, dpd, bucket, stage,
                    stage_since, overdue_principal, overdue_interest, overdue_fee, overdue_penalty, overdue_compound,
                    overdue_total, next_action_on, broken_promises, prior_cures, priority, priority_reasons,
                    updated_on)
            SELECT o.loan_id, o.borrower_id, 'open', '', %(d)s, '', o.dpd, {BUCKET_SQL.format(d="o.dpd")}, 1, %(d)s,
                   o.principal, o.interest, o.fee, o.penalty, o.compound,
                   o.principal + o.interest + o.fee + o.penalty + o.compound, %(d)s, 0,
                   (SELECT COUNT(*) FROM collections_app_collectioncase c2
                     WHERE c2.loan_id = o.loan_id AND c2.status = 'closed' AND c2.close_reason = 'cured'),
                   0, '{{}}'::jsonb, %(d)s
              FROM coll_od o
             WHERE o.past_grace
               -- a loan with its case already open is not built again to be dropped by the conflict (every
               -- re-run and every later day of a case); the conflict still settles a race
               AND NOT EXISTS (SELECT 1 FROM collections_app_collectioncase c
                                WHERE c.loan_id = o.loan_id AND c.status IN {OPEN})
            ON CONFLICT (loan_id) WHERE status IN {OPEN} DO NOTHING
            RETURNING id, prior_cures
        )
        INSERT INTO collections_app_caseevent (case_id, kind, at, business_date, detail, data, dedupe_key)
        SELECT id, CASE WHEN prior_cures > 0 THEN 'reopened' ELSE 'opened' END, %(at)s, %(d)s, '', '{{}}'::jsonb,
               'open:' || id
          FROM opened
        ON CONFLICT (dedupe_key) DO NOTHING""", p)


def _update_figures(d: date, p: dict) -> int:
    return _exec(f"""
        UPDATE collections_app_collectioncase c
           SET dpd = o.dpd, bucket = {BUCKET_SQL.format(d="o.dpd")}, overdue_principal = o.principal,
               overdue_interest = o.interest, overdue_fee = o.fee, overdue_penalty = o.penalty,
               overdue_compound = o.compound,
               overdue_total = o.principal + o.interest + o.fee + o.penalty + o.compound, updated_on = %(d)s
          FROM coll_od o
         WHERE c.loan_id = o.loan_id AND c.status IN {OPEN}
           AND (c.dpd <> o.dpd OR c.overdue_total <> o.principal + o.interest + o.fee + o.penalty + o.compound
                OR c.overdue_penalty <> o.penalty)""", p)


def _pauses(d: date, p: dict) -> int:
    """Paused while a complaint about the loan is open, a hardship request / arrangement is in force, or the loan
    is inside the window of a channel incident (渠道事故: the institution's fault, no escalation for it)."""
    return _exec(f"""
        WITH want AS (
            SELECT c.id,
                   CASE WHEN EXISTS (SELECT 1 FROM collections_app_complaint k
                                      WHERE k.loan_id = c.loan_id AND k.status = 'open') THEN 'complaint'
                        WHEN EXISTS (SELECT 1 FROM collections_app_hardshiparrangement h
                                      WHERE h.case_id = c.id AND h.status IN ('requested', 'active')) THEN 'hardship'
                        WHEN EXISTS ({IN_INCIDENT_WINDOW.format(loan="c.loan_id", d="%(d)s")}) THEN 'incident'
                        ELSE '' END AS reason
              FROM collections_app_collectioncase c WHERE c.status IN {OPEN}
        ), upd AS (
            UPDATE collections_app_collectioncase c
               SET status = CASE WHEN want.reason <> '' THEN 'paused' ELSE 'open' END, pause_reason = want.reason
              FROM want WHERE c.id = want.id AND c.pause_reason <> want.reason
            RETURNING c.id, want.reason
        )
        INSERT INTO collections_app_caseevent (case_id, kind, at, business_date, detail, data, dedupe_key)
        SELECT id, CASE WHEN reason <> '' THEN 'paused' ELSE 'resumed' END, %(at)s, %(d)s, reason, '{{}}'::jsonb,
               'pause:' || id || ':' || %(ds)s || ':' || reason
          FROM upd
        ON CONFLICT (dedupe_key) DO NOTHING""", p)


def _stages(d: date, p: dict) -> dict:
    """Open (not paused) cases climb to the highest stage their DPD reaches, stopping below a stage that
    needs approval — for which a pending escalation request is raised (once; not again within 30 days of
    a rejection)."""
    _exec("DROP TABLE IF EXISTS coll_tgt")
    _exec("""
        CREATE TEMP TABLE coll_tgt ON COMMIT DROP AS
        WITH reach AS (
            SELECT c.id, c.stage AS cur, s.stage_no, s.requires_approval
              FROM collections_app_collectioncase c
              JOIN servicing_loan l ON l.id = c.loan_id
              JOIN servicing_loanproduct pr ON pr.id = l.product_id
              JOIN collections_app_strategystage s ON s.strategy = pr.collection_strategy AND s.is_active
                   AND c.dpd >= s.entry_dpd + CASE WHEN s.after_grace THEN pr.grace_days ELSE 0 END
             WHERE c.status = 'open'
        ), gate AS (
            SELECT id, cur, MIN(stage_no) FILTER (WHERE requires_approval AND stage_no > cur) AS gate
              FROM reach GROUP BY id, cur
        )
        SELECT g.id, g.cur, g.gate,
               GREATEST(g.cur, COALESCE(MAX(r.stage_no) FILTER (WHERE g.gate IS NULL OR r.stage_no < g.gate),
                                        g.cur)) AS target
          FROM gate g JOIN reach r ON r.id = g.id
         GROUP BY g.id, g.cur, g.gate""", p)
    moved = _exec("""
        WITH upd AS (
            UPDATE collections_app_collectioncase c SET stage = t.target, stage_since = %(d)s, next_action_on = %(d)s
              FROM coll_tgt t WHERE c.id = t.id AND t.target > c.stage
            RETURNING c.id, t.cur, t.target
        )
        INSERT INTO collections_app_caseevent (case_id, kind, at, business_date, detail, data, dedupe_key)
        SELECT id, 'stage', %(at)s, %(d)s, cur || ' → ' || target,
               jsonb_build_object('from', cur::text, 'to', target::text, 'why', 'dpd'),
               'stage:' || id || ':' || %(ds)s || ':' || target
          FROM upd
        ON CONFLICT (dedupe_key) DO NOTHING""", p)
    requested = _exec("""
        WITH req AS (
            INSERT INTO collections_app_escalationrequest (case_id, to_stage, status, requested_on, reason)
            SELECT t.id, t.gate, 'pending', %(d)s, 'dpd'
              FROM coll_tgt t
             WHERE t.gate IS NOT NULL AND t.target = t.gate - 1
               AND NOT EXISTS (SELECT 1 FROM collections_app_escalationrequest r
                                WHERE r.case_id = t.id AND r.status = 'rejected'
                                  AND r.decided_on > %(d)s::date - 30)
            ON CONFLICT (case_id) WHERE status = 'pending' DO NOTHING
            RETURNING id, case_id, to_stage
        )
        INSERT INTO collections_app_caseevent (case_id, kind, at, business_date, detail, data, dedupe_key)
        SELECT case_id, 'escalation', %(at)s, %(d)s, '→ ' || to_stage, jsonb_build_object('request', id::text),
               'escalation:' || id
          FROM req
        ON CONFLICT (dedupe_key) DO NOTHING""", p)
    return {"stage_moves": moved, "escalation_requests": requested}


def _priority(d: date, p: dict) -> int:
    """Explainable score: each signal's points are kept beside it (priority_reasons)."""
    return _exec(f"""
        WITH sig AS (
            SELECT c.id,
                   LEAST(c.dpd, 90) AS p_dpd,
                   LEAST(50, FLOOR(c.overdue_total / 1000))::int AS p_amount,
                   20 * c.broken_promises AS p_broken,
                   CASE WHEN EXISTS (SELECT 1 FROM servicing_mandate m WHERE m.loan_id = c.loan_id
                                       AND m.status = 'cancelled' AND m.cancel_cause = 'borrower')
                         AND NOT EXISTS (SELECT 1 FROM servicing_mandate m WHERE m.loan_id = c.loan_id
                                          AND m.status IN ('active', 'pending', 'suspended'))
                        THEN 25 ELSE 0 END AS p_mandate,
                   LEAST(20, 5 * COALESCE(df.n, 0))::int AS p_debit,
                   -10 * c.prior_cures AS p_cures
              FROM collections_app_collectioncase c
              LEFT JOIN (SELECT case_id, COUNT(*) AS n FROM collections_app_caseevent
                          WHERE kind = 'debit_failed' AND business_date > %(d)s::date - 30
                          GROUP BY case_id) df ON df.case_id = c.id
             WHERE c.status IN {OPEN}
        ), score AS (
            SELECT id, p_dpd + p_amount + p_broken + p_mandate + p_debit + p_cures AS total,
                   jsonb_strip_nulls(jsonb_build_object(
                       'dpd', NULLIF(p_dpd, 0), 'amount', NULLIF(p_amount, 0), 'broken_promises', NULLIF(p_broken, 0),
                       'mandate_cancelled', NULLIF(p_mandate, 0), 'debit_failures', NULLIF(p_debit, 0),
                       'prior_cures', NULLIF(p_cures, 0))) AS reasons
              FROM sig
        )
        UPDATE collections_app_collectioncase c SET priority = score.total, priority_reasons = score.reasons
          FROM score WHERE c.id = score.id AND (c.priority <> score.total OR c.priority_reasons <> score.reasons)""", p)


def assign_unassigned(d: date, mode: str | None = None) -> int:
    """Give every unassigned open case a collector: by bucket (collectors' profiles), round-robin, or load.

    Within a bucket (or overall) cases in priority order go round the collectors, least loaded first.
    Agency cases and collectors of agencies are left out (the agency assigns its own people).
    """
    mode = mode or rules.conf("ASSIGNMENT")
    by_bucket = mode == "bucket"
    order = "load, user_id" if mode in ("load", "bucket") else "user_id"
    return _exec(f"""
        WITH col AS (
            SELECT u.id AS user_id, COALESCE(NULLIF(p.buckets, ''), '*') AS buckets,
                   (SELECT COUNT(*) FROM collections_app_collectioncase c
                     WHERE c.assigned_to_id = u.id AND c.status IN {OPEN}) AS load,
                   COALESCE(p.max_open_cases, 1000000) AS cap
              FROM auth_user u
              JOIN auth_user_groups ug ON ug.user_id = u.id
              JOIN auth_group g ON g.id = ug.group_id AND g.name = 'collector'
              LEFT JOIN collections_app_collectorprofile p ON p.user_id = u.id
             WHERE u.is_active AND COALESCE(p.is_active, true) AND p.agency_id IS NULL
        ), col_b AS (
            SELECT user_id, load, CASE WHEN %(by_bucket)s THEN b ELSE '*' END AS bucket
              FROM col CROSS JOIN LATERAL unnest(CASE WHEN buckets = '*' OR NOT %(by_bucket)s
                                                      THEN ARRAY['M1', 'M2', 'M3', 'M3+']
                                                      ELSE string_to_array(buckets, ',') END) AS b
             WHERE load < cap
        ), cols AS (
            SELECT DISTINCT user_id, load, bucket FROM col_b
        ), ranked AS (
            SELECT user_id, bucket, ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY {order}) - 1 AS rn,
                   COUNT(*) OVER (PARTITION BY bucket) AS n
              FROM cols
        ), sizes AS (
            SELECT DISTINCT bucket, n FROM ranked
        ), todo AS (
            SELECT t.id, t.bucket, t.rn %% s.n AS slot
              FROM (SELECT c.id, CASE WHEN %(by_bucket)s THEN c.bucket ELSE '*' END AS bucket,
                           ROW_NUMBER() OVER (PARTITION BY CASE WHEN %(by_bucket)s THEN c.bucket ELSE '*' END
                                              ORDER BY c.priority DESC, c.id) - 1 AS rn
                      FROM collections_app_collectioncase c
                     WHERE c.assigned_to_id IS NULL AND c.agency_id IS NULL AND c.status IN {OPEN}
                       -- only buckets someone can take: with no collector free, the cases are not ranked at all
                       -- (a whole bucket dropped keeps the others' row numbers)
                       AND CASE WHEN %(by_bucket)s THEN c.bucket ELSE '*' END IN (SELECT bucket FROM sizes)) t
              JOIN sizes s ON s.bucket = t.bucket
        ), upd AS (
            UPDATE collections_app_collectioncase c SET assigned_to_id = r.user_id
              FROM todo JOIN ranked r ON r.bucket = todo.bucket AND r.rn = todo.slot
             WHERE c.id = todo.id
            RETURNING c.id, c.assigned_to_id
        )
        INSERT INTO collections_app_caseevent (case_id, kind, at, business_date, actor_id, detail, data, dedupe_key)
        SELECT id, 'assigned', %(at)s, %(d)s, NULL, %(mode)s, jsonb_build_object('to', assigned_to_id::text),
               'assign:' || id || ':' || assigned_to_id || ':' || %(ds)s
          FROM upd
        ON CONFLICT (dedupe_key) DO NOTHING""",
                 {"d": d, "ds": d.isoformat(), "at": _day_start(d), "mode": mode, "by_bucket": by_bucket})


def _messages(d: date, p: dict) -> dict:
    """The day's automatic reminders (overdue_reminder) for open cases whose next action is due.

    The contact rules are applied here set-based — the same rules as `rules.check_contact`: the scheduled
    time must be outside quiet hours, and per borrower the day's and week's message caps hold (counting
    what was already sent plus this batch in priority order). Every message is logged as a
    ContactAttempt, allowed or refused with its rule; allowed ones go to the notices outbox.
    """
    at = rules.message_time(d)
    quiet = rules.in_quiet_hours(at)
    q = {**p, "msg_at": at, "quiet": quiet, "cap_day": rules.conf("MAX_MESSAGES_PER_DAY"),
         "cap_week": rules.conf("MAX_MESSAGES_PER_WEEK"), "local_day": rules.local(at).date(),
         "week_start": rules.local(at).date() - timedelta(days=6)}
    rows = _rows(f"""
        WITH due AS (
            SELECT c.id AS case_id, c.borrower_id, c.loan_id, c.agency_id, ch.channel, c.priority, s.cadence_days
              FROM collections_app_collectioncase c
              JOIN servicing_loan l ON l.id = c.loan_id
              JOIN servicing_loanproduct pr ON pr.id = l.product_id
              JOIN collections_app_strategystage s ON s.strategy = pr.collection_strategy AND s.stage_no = c.stage
              CROSS JOIN LATERAL jsonb_array_elements_text(s.message_channels) AS ch(channel)
             WHERE c.status = 'open' AND c.next_action_on <= %(d)s
        ), sent AS (
            SELECT a.borrower_id,
                   COUNT(*) FILTER (WHERE a.local_date = %(local_day)s) AS today,
                   COUNT(*) AS week
              FROM collections_app_contactattempt a
             WHERE a.borrower_id IN (SELECT borrower_id FROM due) AND a.allowed
               AND a.channel IN ('sms', 'in_app', 'email', 'letter')
               AND a.local_date BETWEEN %(week_start)s AND %(local_day)s
             GROUP BY a.borrower_id
        ), ranked AS (
            SELECT due.*, COALESCE(sent.today, 0) AS today, COALESCE(sent.week, 0) AS week,
                   ROW_NUMBER() OVER (PARTITION BY due.borrower_id ORDER BY due.priority DESC, due.case_id,
                                      due.channel) AS rn
              FROM due LEFT JOIN sent ON sent.borrower_id = due.borrower_id
        ), verdict AS (
            SELECT ranked.*,
                   CASE WHEN %(quiet)s THEN '{rules.QUIET_HOURS}'
                        WHEN today + rn > %(cap_day)s THEN '{rules.MESSAGES_DAY}'
                        WHEN week + rn > %(cap_week)s THEN '{rules.MESSAGES_WEEK}'
                        ELSE '' END AS rule
              FROM ranked
        ), ins AS (
            INSERT INTO collections_app_contactattempt
                   (case_id, borrower_id, loan_id, channel, target, number, at, local_date, business_date, outcome,
                    allowed, refused_rule, refusal_message, override_reason, overridden_rule, automatic,
                    identity_stated, discloses_debt, agency_id, notes, notice_state, dedupe_key)
            SELECT case_id, borrower_id, loan_id, channel, 'borrower', '', %(msg_at)s, %(local_day)s, %(d)s,
                   CASE WHEN rule = '' THEN 'sent' ELSE 'refused' END, rule = '', rule, rule, '', '', true,
                   true, false, agency_id, '', CASE WHEN rule = '' THEN 'pending' ELSE '' END,
                   'auto:' || case_id || ':' || %(ds)s || ':' || channel
              FROM verdict
            ON CONFLICT (dedupe_key) DO NOTHING
            RETURNING id, case_id, channel, allowed, refused_rule
        ), ev AS (
            INSERT INTO collections_app_caseevent (case_id, kind, at, business_date, detail, data, dedupe_key)
            SELECT case_id, CASE WHEN allowed THEN 'notice' ELSE 'contact_refused' END, %(msg_at)s, %(d)s,
                   'overdue_reminder ' || channel || CASE WHEN allowed THEN '' ELSE ' · ' || refused_rule END,
                   jsonb_build_object('attempt', id::text, 'channel', channel, 'rule', refused_rule),
                   'msg:' || id
              FROM ins
            ON CONFLICT (dedupe_key) DO NOTHING
        ), nxt AS (
            UPDATE collections_app_collectioncase c
               SET next_action_on = CASE WHEN v.ok THEN %(d)s::date + v.cadence ELSE %(d)s::date + 1 END
              FROM (SELECT case_id, bool_or(rule = '') AS ok, MAX(cadence_days) AS cadence
                      FROM verdict GROUP BY case_id) v
             WHERE c.id = v.case_id
        )
        SELECT id, allowed FROM ins""", q)
    # the next message day counts these per borrower (`sent`): with the statistics still saying "none", it
    # probed every due row against every attempt (200 s for 50k messages, days run back to back in a catch-up)
    refresh_stats("collections_app_contactattempt", "borrower_id, local_date, allowed, channel", len(rows))
    pending = [pk for pk, allowed in rows if allowed]
    _dispatch(pending)
    return {"messages": len(pending), "messages_refused": sum(1 for _, a in rows if not a)}


def _dispatch(attempt_ids: list[int]) -> None:
    """Hand the day's messages to the outbox: inline when few, else in chunks to django-q2, enqueued with the
    step's transaction (servicing.queueing): the tasks exist exactly when the day's attempts were committed."""
    if not attempt_ids:
        return
    if len(attempt_ids) <= rules.conf("INLINE_MESSAGE_LIMIT"):
        from .contacts import send_automatic_messages

        send_automatic_messages(attempt_ids)
        return
    size = rules.conf("MESSAGE_CHUNK")
    for i in range(0, len(attempt_ids), size):
        enqueue_with_transaction("collections_app.tasks.send_messages", attempt_ids[i:i + size])


def _day_start(d: date) -> datetime:
    return datetime.combine(d, time(0, 0), tzinfo=rules.tz())


def ensure_ladders() -> None:
    """Every strategy named by a product has a ladder (the default one, copied) before the day runs."""
    from .cases import ensure_default_ladder

    have = set(StrategyStage.objects.values_list("strategy", flat=True).distinct())
    for name in set(LoanProduct.objects.values_list("collection_strategy", flat=True)) - have:
        ensure_default_ladder(name or "default")


def step(d: date) -> dict:
    """The collections step of the business day for `d` (one transaction)."""
    stats: dict = {}
    timings: dict = {}
    p = {"d": d, "ds": d.isoformat(), "at": _day_start(d), "week": d - timedelta(days=7)}

    def run(name: str, fn):
        t0 = _time.perf_counter()
        out = fn()
        timings[name] = round(_time.perf_counter() - t0, 3)
        if isinstance(out, dict):
            stats.update(out)
        else:
            stats[name] = out

    with transaction.atomic():
        ensure_ladders()
        run("overdue_loans", lambda: _snapshot(d))
        run("payment_events", lambda: _payment_events(d, p))
        run("hardship", lambda: _hardship(d, p))
        run("promises", lambda: _promises(d, p))
        run("closed", lambda: _close_cured(d, p))
        run("opened", lambda: _open_new(d, p))
        run("debit_failure_events", lambda: _debit_failure_events(d, p))  # after opening: today's cases too
        run("updated", lambda: _update_figures(d, p))
        run("pause_changes", lambda: _pauses(d, p))
        run("stages", lambda: _stages(d, p))
        run("priority_changes", lambda: _priority(d, p))
        run("assigned", lambda: assign_unassigned(d))
        run("messages", lambda: _messages(d, p))
    stats["timings"] = json.loads(json.dumps(timings))
    return stats
