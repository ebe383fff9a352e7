"""What a failed debit leads to: its category's action (debits.md), as the product's retry policy says.

Set-based, for a whole chunk of a result file (tens of thousands of failures on a bad day): the failures are a
temp table, read with what their actions need in one statement. A retry date needs the product's policy and
the calendar, so it is computed in Python once per distinct (product, category, first failure, failure date,
retries used) — a handful for a whole file, not one per debit — and joined back. Then one statement each:
retry states upserted, mandates suspended, ops alerts audited, borrowers told (the failure reason in plain
words in their language, the next retry date or none, the pay-now link). Mandate cancellation goes through the
mandate service, one by one (it tells the borrower how to re-sign).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date

from django.db import connection, transaction
from django.utils import timezone, translation

from servicing.models import Debit, Loan, LoanProduct, Mandate
from servicing.models.debits import RetryStatus
from servicing.models.mandates import CancelCause, MandateStatus
from servicing.services import audit

from .bulk_notices import OUTBOX_INSERT, dedupe_key_sql, masked_contract_sql
from .policy import ACTION_TEXT, NEXT_STEP, PLAIN_REASON, next_retry, policy_for, should_notify

logger = logging.getLogger(__name__)


@dataclass
class Failure:
    debit_id: int
    category: str
    failed_on: date


def pay_url(loan) -> str:
    """The borrower's pay-now link for this loan, built like every other link in notices."""
    from notices.conf import conf, public_url

    return public_url(f"{conf('PAY_PATH')}{loan.contract_no}/")


def failure_wording(language: str) -> dict:
    """debit_failed's words in a borrower's language: the reason per category and the next-step sentences."""
    lang = "en" if language == "en" else "zh-hans"
    with translation.override(lang):
        reasons = {cat: str(text) for cat, text in PLAIN_REASON.items()}
    return {"reasons": reasons, **NEXT_STEP[lang]}


def failure_context(wording: dict, *, category: str, amount: str, next_retry_on: str, url: str) -> dict:
    """The event context of one failed debit (what the bulk SQL path writes too; tests hold them equal)."""
    reason = wording["reasons"].get(category, wording["reasons"]["unclassified"])
    step = wording["retry"] if next_retry_on else wording["last"]
    return {"reason": reason, "amount": amount, "pay_url": url,
            "next_step": step.replace("{date}", next_retry_on).replace("{url}", url)}


# The work tables, made once per transaction and emptied for each call: one caller may apply failures one at a
# time in a long transaction (a table created and dropped per call holds a lock each until commit, and a
# thousand calls ran out of lock slots). _failure_action is joined by debit id to a chunk's answers: with the
# chunk's debits estimated at a few rows (they are read by key), the planner loops over it once per answer; by
# its index, that loop is a probe each.
FAILURE_COLUMNS = """debit_id bigint, category text, failed_on date, reference text, amount numeric, loan_id bigint,
    instalment_id bigint, mandate_id bigint, mandate_status text, product_id bigint, first_failed_on date,
    failures_before int, retries_used int"""
WORK_TABLES_SQL = f"""
CREATE TEMP TABLE IF NOT EXISTS _failure ({FAILURE_COLUMNS}) ON COMMIT DROP;
CREATE TEMP TABLE IF NOT EXISTS _failure_related (debit_id bigint, category text, failed_on date, product_id bigint,
    loan_id bigint, instalment_id bigint, first_failed_on date, failures int, retries_used int) ON COMMIT DROP;
CREATE TEMP TABLE IF NOT EXISTS _failure_rule (product_id bigint, category text, first_failed_on date, failed_on date,
    retries_used int, next_retry_on date, status text, action text, action_text text, alert_ops boolean,
    told_first boolean, told_again boolean) ON COMMIT DROP;
CREATE TEMP TABLE IF NOT EXISTS _failure_action ({FAILURE_COLUMNS}, next_retry_on date, status text, action text,
    action_text text, alert_ops boolean, told boolean) ON COMMIT DROP;
CREATE UNIQUE INDEX IF NOT EXISTS _failure_action_debit ON _failure_action (debit_id);
TRUNCATE _failure, _failure_related, _failure_rule, _failure_action
"""

# The failures of `source` (debit_id, category, failed_on) with what their actions need; each row's debit,
# mandate, loan and retry state read by key (a join could hash a whole table for a chunk's rows).
FAILURES_SQL = """
INSERT INTO _failure
SELECT f.debit_id, f.category, f.failed_on, d.reference, d.amount, d.loan_id, d.instalment_id, d.mandate_id,
       m.status AS mandate_status, l.product_id,
       COALESCE(rs.first_failed_on, f.failed_on) AS first_failed_on, COALESCE(rs.failures, 0) AS failures_before,
       COALESCE(rs.retries_used, 0) AS retries_used
  FROM {source} f
 CROSS JOIN LATERAL (SELECT x.reference, x.amount, x.loan_id, x.instalment_id, x.mandate_id
                       FROM servicing_debit x WHERE x.id = f.debit_id OFFSET 0) d
 CROSS JOIN LATERAL (SELECT x.status FROM servicing_mandate x WHERE x.id = d.mandate_id OFFSET 0) m
 CROSS JOIN LATERAL (SELECT x.product_id FROM servicing_loan x WHERE x.id = d.loan_id OFFSET 0) l
  LEFT JOIN LATERAL (SELECT x.first_failed_on, x.failures, x.retries_used FROM servicing_retrystate x
                      WHERE x.instalment_id = d.instalment_id OFFSET 0) rs ON true
"""

# the loan's other instalments still being retried: each is retried on the schedule of this failure's policy
RELATED_SQL = """
INSERT INTO _failure_related
SELECT f.debit_id, f.category, f.failed_on, f.product_id, f.loan_id, s.instalment_id, s.first_failed_on,
       s.failures, s.retries_used
  FROM _failure f
 CROSS JOIN LATERAL (SELECT x.instalment_id, x.first_failed_on, x.failures, x.retries_used
                       FROM servicing_retrystate x
                      WHERE x.loan_id = f.loan_id AND x.status = 'in_flight' AND x.instalment_id <> f.instalment_id
                     OFFSET 0) s
"""

RULE_KEY = ("product_id", "category", "first_failed_on", "failed_on", "retries_used")

ACTIONS_SQL = """
INSERT INTO _failure_action
SELECT f.*, r.next_retry_on, r.status, r.action, r.action_text, r.alert_ops,
       CASE WHEN f.failures_before = 0 THEN r.told_first ELSE r.told_again END AS told
  FROM _failure f JOIN _failure_rule r USING (product_id, category, first_failed_on, failed_on, retries_used)
"""

# one row per instalment: the failed one's own state wins over the same instalment as another's related state
UPSERT_STATES_SQL = """
INSERT INTO servicing_retrystate (instalment_id, loan_id, first_failed_on, failures, retries_used, next_retry_on,
                                  status, last_category, last_debit_id, next_kind, updated_at)
SELECT DISTINCT ON (u.instalment_id) u.instalment_id, u.loan_id, u.first_failed_on, u.failures, u.retries_used,
       u.next_retry_on, u.status, u.category, u.debit_id, 'retry', now()
  FROM (SELECT a.instalment_id, a.loan_id, a.first_failed_on, a.failures_before + 1 AS failures, a.retries_used,
               a.next_retry_on, a.status, a.category, a.debit_id, 0 AS own
          FROM _failure_action a
        UNION ALL
        SELECT s.instalment_id, s.loan_id, s.first_failed_on, s.failures + 1, s.retries_used, r.next_retry_on,
               r.status, s.category, s.debit_id, 1
          FROM _failure_related s
          JOIN _failure_rule r USING (product_id, category, first_failed_on, failed_on, retries_used)) u
 ORDER BY u.instalment_id, u.own, u.debit_id DESC
ON CONFLICT (instalment_id) DO UPDATE
   SET failures = EXCLUDED.failures, retries_used = EXCLUDED.retries_used, next_retry_on = EXCLUDED.next_retry_on,
       status = EXCLUDED.status, last_category = EXCLUDED.last_category, last_debit_id = EXCLUDED.last_debit_id,
       next_kind = 'retry', updated_at = now()
"""

# debit_failed for the borrowers told, as notices.services.events.notify writes it (failure_context's words)
NOTICES_SQL = f"""
WITH x AS MATERIALIZED (
    SELECT a.debit_id, a.loan_id, a.failed_on, a.category, a.amount, a.next_retry_on, l.contract_no,
           b.id AS borrower_id, b.name AS borrower_name, b.email,
           CASE WHEN b.language IN ('zh-hans', 'en') THEN b.language ELSE 'zh-hans' END AS language
      FROM _failure_action a
     CROSS JOIN LATERAL (SELECT y.contract_no, y.borrower_id FROM servicing_loan y WHERE y.id = a.loan_id OFFSET 0) l
      JOIN servicing_borrower b ON b.id = l.borrower_id
     WHERE a.told
), c AS (
    SELECT x.*, %(pay)s::text || x.contract_no || '/' AS url, (%(words)s::jsonb -> x.language) AS w
      FROM x
)
{OUTBOX_INSERT}
SELECT 'debit_failed', ch.channel, c.language, c.borrower_id, c.loan_id, 'servicing.debit', c.debit_id::text,
       c.failed_on, {dedupe_key_sql("debit_failed", "servicing.debit", "c.debit_id", "c.failed_on")},
       'queued', %(collection)s,
       jsonb_build_object(
           'borrower_name', c.borrower_name,
           'contract_no', {masked_contract_sql("c.contract_no")},
           'lender_name', %(lender)s::text, 'service_phone', %(phone)s::text, 'pay_url', c.url,
           'amount', to_char(c.amount, 'FM999,999,999,999,990.00'),
           'reason', COALESCE(c.w -> 'reasons' ->> c.category, c.w -> 'reasons' ->> 'unclassified'),
           'next_step', CASE WHEN c.next_retry_on IS NOT NULL
                             THEN replace(replace(c.w ->> 'retry', '{{date}}', to_char(c.next_retry_on, 'YYYY-MM-DD')),
                                          '{{url}}', c.url)
                             ELSE replace(c.w ->> 'last', '{{url}}', c.url) END),
       %(scheduled)s, NULL, 0, '', '', '', '', now()
  FROM c CROSS JOIN unnest(%(channels)s::text[]) AS ch(channel)
 WHERE ch.channel <> 'email' OR c.email <> ''
ON CONFLICT (dedupe_key) DO NOTHING
"""


def apply_failures(failures: list[Failure]) -> dict[int, str]:
    """Apply each failure's category action. Returns {debit_id: action text} for the answer to record.
    (A result file's chunk calls `apply_failed_debits` on its temp table instead.)"""
    if not failures:
        return {}
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS _failed_in (debit_id bigint, category text, failed_on date) "
                    "ON COMMIT DROP; TRUNCATE _failed_in")
        cur.execute("INSERT INTO _failed_in SELECT * FROM unnest(%s::bigint[], %s::text[], %s::date[])",
                    [[f.debit_id for f in failures], [f.category for f in failures], [f.failed_on for f in failures]])
        apply_failed_debits("_failed_in")
        cur.execute("SELECT debit_id, action_text FROM _failure_action")
        return dict(cur.fetchall())


def apply_failed_debits(source: str) -> int:
    """Apply the category actions of the failed debits in temp table `source` (debit_id, category, failed_on),
    in the caller's transaction. Leaves temp table `_failure_action` (debit_id, action_text, …, indexed on
    debit_id) for the caller to record each debit's action, until the next call or the commit. Returns the
    failures applied."""
    with connection.cursor() as cur:
        cur.execute(WORK_TABLES_SQL)
        cur.execute(FAILURES_SQL.format(source=source))
        cur.execute(RELATED_SQL)
        cur.execute(f"SELECT DISTINCT {', '.join(RULE_KEY)} FROM _failure "
                    f"UNION SELECT DISTINCT {', '.join(RULE_KEY)} FROM _failure_related")
        combos = cur.fetchall()
        rules = _rules(combos)
        if rules:
            cur.execute("INSERT INTO _failure_rule SELECT * FROM unnest(%s::bigint[], %s::text[], %s::date[], "
                        "%s::date[], %s::int[], %s::date[], %s::text[], %s::text[], %s::text[], %s::boolean[], "
                        "%s::boolean[], %s::boolean[])", [list(col) for col in zip(*rules, strict=True)])
        cur.execute("ANALYZE _failure (debit_id, loan_id)")
        cur.execute(ACTIONS_SQL)
        cur.execute("ANALYZE _failure_action (debit_id)")
        n = _count(cur, "_failure_action")
        if n:
            _alert_ops(cur)
            _act_on_mandates(cur)
            _notify(cur)
            cur.execute(UPSERT_STATES_SQL)
    return n


def _count(cur, table: str) -> int:
    cur.execute(f"SELECT COUNT(*) FROM {table}")
    return cur.fetchone()[0]


def _rules(combos: list[tuple]) -> list[tuple]:
    """Per distinct (product, category, first failure, failure date, retries used): the next retry date or
    none, the retry state's status, the action (and its words for the debit's answer), ops alert, and whether the
    borrower is told on a first failure and on a later one (policy.should_notify)."""
    products = LoanProduct.objects.in_bulk({c[0] for c in combos})
    rules = []
    for product_id, category, first, failed_on, retries_used in combos:
        policy = policy_for(products.get(product_id), category)
        action = policy.get("action", "stop")
        nxt = next_retry(policy, first_failed_on=first, failed_on=failed_on, retries_used=retries_used)
        if action == "retry":
            status = RetryStatus.SCHEDULED if nxt else RetryStatus.EXHAUSTED
        else:
            status = RetryStatus.STOPPED
        text = ACTION_TEXT.get(action, action)
        if nxt:
            text = f"retry on {nxt.isoformat()}"
        elif action == "retry":
            text = "retries exhausted, no retry"
        if policy.get("alert_ops"):
            text = "no retry, ops alerted"
        rules.append((product_id, category, first, failed_on, retries_used, nxt, str(status), action, text,
                      bool(policy.get("alert_ops")), should_notify(policy, 0), should_notify(policy, 1)))
    return rules


def _alert_ops(cur) -> None:
    """A broken file can fail every line as technical: one log line and one INSERT, not one per line."""
    cur.execute("SELECT debit_id, reference, category FROM _failure_action WHERE alert_ops ORDER BY debit_id")
    alerts = cur.fetchall()
    if not alerts:
        return
    refs = [ref for _, ref, _ in alerts]
    logger.error("technical debit failure on %d debit(s) (%s%s): ops must check the file/format/signature",
                 len(refs), ", ".join(refs[:5]), ", …" if len(refs) > 5 else "")
    audit.record_many("debit.technical_alert", "servicing.debit", {pk: f"category {cat}" for pk, _, cat in alerts})


def _act_on_mandates(cur) -> None:
    """Suspended in one statement (a file can freeze a thousand accounts); cancelled through the mandate service."""
    cur.execute("""SELECT mandate_id, 'debit ' || reference || ': ' || category, action FROM _failure_action
                    WHERE (action = 'suspend' AND mandate_status = %s) OR (action = 'cancel' AND mandate_status <> %s)
                    ORDER BY debit_id""", [MandateStatus.ACTIVE, MandateStatus.CANCELLED])
    suspend, cancel = {}, {}
    for mandate_id, reason, action in cur.fetchall():
        (suspend if action == "suspend" else cancel)[mandate_id] = reason
    if suspend:
        from servicing.services.mandates import suspend_mandates

        suspend_mandates(suspend)
    if cancel:
        from servicing.services.mandates import cancel_mandate

        for mandate in Mandate.objects.filter(pk__in=cancel).exclude(status=MandateStatus.CANCELLED):
            cancel_mandate(mandate, cause=CancelCause.BANK, reason=cancel[mandate.pk])


def _notify(cur) -> None:
    """debit_failed for the borrowers the policy tells: a few through notify() one by one (the single source of
    the notices' rules), more in one INSERT … SELECT that writes the same rows."""
    from .bulk_notices import bulk_threshold

    cur.execute("SELECT COUNT(*) FROM _failure_action WHERE told")
    (n,) = cur.fetchone()
    if not n:
        return
    if n > bulk_threshold():
        _queue_failure_notices(cur)
        return
    from notices.services import events
    from servicing.domain.money import format_amount_grouped

    cur.execute("SELECT debit_id, loan_id, reference, amount, category, failed_on, next_retry_on FROM _failure_action "
                "WHERE told ORDER BY debit_id")
    rows = cur.fetchall()
    loans = Loan.objects.select_related("borrower").in_bulk({r[1] for r in rows})
    for debit_id, loan_id, reference, amount, category, failed_on, nxt in rows:
        loan = loans[loan_id]
        debit = Debit.from_db(None, ["id", "loan_id", "reference", "amount"], [debit_id, loan_id, reference, amount])
        context = failure_context(failure_wording(loan.borrower.language), category=category,
                                  amount=format_amount_grouped(amount), next_retry_on=nxt.isoformat() if nxt else "",
                                  url=pay_url(loan))
        events.notify("debit_failed", loan=loan, obj=debit, on_date=failed_on, context=context)


def _queue_failure_notices(cur) -> None:
    from notices.catalog import event_spec
    from notices.conf import business, conf, public_url
    from notices.services.outbox import wake_dispatcher
    from notices.services.rules import next_allowed_time

    spec = event_spec("debit_failed")
    # what this statement writes: the common variables and the event's own, no opt-out (a service notice)
    assert set(spec.all_variables) == {"borrower_name", "contract_no", "lender_name", "service_phone", "pay_url",
                                       "amount", "reason", "next_step"}, spec.all_variables
    assert spec.mandatory, spec
    now = timezone.now()
    scheduled = next_allowed_time(now)
    cur.execute(NOTICES_SQL, {
        "pay": public_url(conf("PAY_PATH")), "lender": business("LENDER_NAME", ""), "phone": conf("SERVICE_PHONE"),
        "words": json.dumps({lang: failure_wording(lang) for lang in ("zh-hans", "en")}, ensure_ascii=False),
        "collection": spec.collection, "scheduled": scheduled, "channels": list(spec.channels)})
    if cur.rowcount and scheduled <= now:
        wake_dispatcher()
