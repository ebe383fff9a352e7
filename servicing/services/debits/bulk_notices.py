"""Notices for a whole chunk of a result-file import in one INSERT each, instead of one notify() per row.

They write exactly the rows `notices.services.events.notify` → `notices.services.outbox.queue` writes:
same dedupe key (`outbox.dedupe_key`: event:object_type:object_id:on_date:channel, ON CONFLICT DO NOTHING
on its unique index, so a re-run queues nothing new), same channels (email only when the borrower has an
address), same opt-out suppression (not for mandatory events; in-app is never suppressed), same language,
quiet-hours `scheduled_for`, and the same context variables (the event's COMMON_VARIABLES, its own and the
optional ones, all as strings). The dispatcher is woken once after commit.

Small sets (≤ REPAYDESK["INLINE_RECEIPTS_MAX"], default 200) still go through notify() one by one — the
single source of the wording; these helpers are for the large imports, where notify's several queries per
notice would cost more than the import itself.

Receipts of a result file are a follow-up step of the import (`file_receipts`): after its chunks, for every
succeeded payment of the file (found through the debits the file answered → payment, so a re-run after a
crash finds them all again) — inline for a few, else one django-q2 task per file enqueued in the
transaction that marks the file processed (`queue_file_receipts`, idempotent on the dedupe key).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.conf import settings
from django.db import connection
from django.utils import timezone

from notices.catalog import event_spec
from notices.conf import business, conf, public_url
from notices.models import Channel as NoticeChannel
from notices.models import ChannelPreference, NoticeStatus
from notices.services.outbox import dedupe_key, wake_dispatcher
from notices.services.rules import next_allowed_time
from servicing.services.debits.faults import fault
from servicing.sql import chunk_settings, copy_rows, run_chunks


def bulk_threshold() -> int:
    return int(settings.REPAYDESK.get("INLINE_RECEIPTS_MAX", 200))


def notify_many(event: str, items: list[tuple]) -> None:
    """Tell many borrowers of `event`: items (loan with borrower loaded, the object, on_date, event context[,
    cause_at]). A few go through notify() one by one, more than the inline threshold through one COPY
    (queue_many); both write the same outbox rows."""
    if len(items) > bulk_threshold():
        queue_many(event, items)
        return
    from notices.services import events

    for loan, obj, on_date, context, *cause_at in items:
        events.notify(event, loan=loan, obj=obj, on_date=on_date, context=context,
                      cause_at=cause_at[0] if cause_at else None)


def queue_many(event: str, items: list[tuple], *, now=None) -> int:
    """items: (loan with borrower loaded, the object, on_date, event context[, cause_at]). One bulk insert; each
    context built by events.notice_context, as notify() builds it."""
    from notices.services.events import _lang, notice_context

    if not items:
        return 0
    spec = event_spec(event)
    now = now or timezone.now()
    scheduled = next_allowed_time(now)
    blocked: dict[int, set[str]] = {}
    if not spec.mandatory:
        for bid, ch in ChannelPreference.objects.filter(
                borrower_id__in={loan.borrower_id for loan, *_ in items}, opted_out=True).values_list(
                "borrower_id", "channel"):
            blocked.setdefault(bid, set()).add(ch)
    rows: list[tuple] = []
    for loan, obj, on_date, context, *cause_at in items:
        borrower = loan.borrower
        object_type, object_id = obj._meta.label_lower, obj.pk
        language = _lang(loan)
        ctx = notice_context(spec, loan, obj, on_date, context)
        off = blocked.get(borrower.pk, set()) - {NoticeChannel.IN_APP}
        for channel in spec.channels:
            if channel == "email" and not borrower.email:
                continue
            suppressed = channel in off
            rows.append((
                spec.code, channel, language, borrower.pk, loan.pk, object_type, str(object_id), on_date,
                dedupe_key(spec.code, object_type, object_id, on_date, channel),
                NoticeStatus.SUPPRESSED if suppressed else NoticeStatus.QUEUED,
                f"borrower opted out of {channel}" if suppressed else "", spec.collection,
                json.dumps(ctx, ensure_ascii=False), scheduled, cause_at[0] if cause_at else None))
    _copy_notices(rows)
    if scheduled <= now:
        wake_dispatcher()
    return len(rows)


NOTICE_COLUMNS = ("event", "channel", "language", "borrower_id", "loan_id", "object_type", "object_id", "on_date",
                  "dedupe_key", "status", "last_error", "collection", "context", "scheduled_for", "cause_at")


def _copy_notices(rows: list[tuple]) -> None:
    """COPY the outbox rows into a temp table, then one INSERT … ON CONFLICT (dedupe_key) DO NOTHING."""
    from django.db import transaction

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("""CREATE TEMP TABLE _queued_notices (
                           event text, channel text, language text, borrower_id bigint, loan_id bigint,
                           object_type text, object_id text, on_date date, dedupe_key text, status text,
                           last_error text, collection boolean, context jsonb, scheduled_for timestamptz,
                           cause_at timestamptz
                       ) ON COMMIT DROP""")
        copy_rows("_queued_notices", NOTICE_COLUMNS, rows)
        cur.execute("""INSERT INTO notices_notice (event, channel, language, borrower_id, loan_id, object_type,
                                                   object_id, on_date, dedupe_key, status, last_error, collection,
                                                   context, scheduled_for, cause_at, attempts, subject, body,
                                                   provider_ref, created_at)
                       SELECT q.*, 0, '', '', '', now() FROM _queued_notices q
                       ON CONFLICT (dedupe_key) DO NOTHING""")
        cur.execute("DROP TABLE _queued_notices")


# The outbox row as notices.services.outbox.queue writes it, for the set-based INSERT … SELECTs (here and
# failures.py): its columns, its dedupe key (outbox.dedupe_key, per channel `ch.channel`) and the masked contract
# number of the common context (Loan.masked_contract_no).
OUTBOX_INSERT = """INSERT INTO notices_notice (event, channel, language, borrower_id, loan_id, object_type, object_id,
                            on_date, dedupe_key, status, collection, context, scheduled_for, cause_at, attempts,
                            subject, body, provider_ref, last_error, created_at)"""


def dedupe_key_sql(event: str, object_type: str, object_id: str, on_date: str) -> str:
    return f"'{event}:{object_type}:' || {object_id} || ':' || to_char({on_date}, 'YYYY-MM-DD') || ':' || ch.channel"


def masked_contract_sql(contract_no: str) -> str:
    return (f"CASE WHEN length({contract_no}) > 8 THEN left({contract_no}, 4) || '****' || right({contract_no}, 4) "
            f"ELSE {contract_no} END")


RECEIPTS_SQL = f"""
WITH p AS MATERIALIZED (
    SELECT pm.id, pm.loan_id, pm.amount, pm.credited_amount, pm.value_date, l.contract_no, l.status AS loan_status,
           b.id AS borrower_id, b.name AS borrower_name, b.email,
           CASE WHEN b.language IN ('zh-hans', 'en') THEN b.language ELSE 'zh-hans' END AS language
      FROM servicing_payment pm
     CROSS JOIN LATERAL (SELECT x.contract_no, x.status, x.borrower_id FROM servicing_loan x
                          WHERE x.id = pm.loan_id OFFSET 0) l  -- by key, not a hash of every loan
      JOIN servicing_borrower b ON b.id = l.borrower_id
     WHERE pm.id = ANY(%(ids)s::bigint[])
), sums AS (
    SELECT a.payment_id, x.component, SUM(x.amount) AS total
      FROM p JOIN servicing_allocation a ON a.payment_id = p.id AND a.payment_id = ANY(%(ids)s::bigint[])  -- by key
     CROSS JOIN LATERAL (VALUES ('penalty', a.penalty), ('compound', a.compound), ('fee', a.fee),
                                ('interest', a.interest), ('principal', a.principal)) AS x(component, amount)
     GROUP BY a.payment_id, x.component
), paid AS (
    SELECT q.payment_id,
           string_agg(CASE WHEN p.language = 'en'
                           THEN (%(en)s::jsonb ->> q.component) || ' ' || to_char(q.total, %(fmt)s)
                           ELSE (%(zh)s::jsonb ->> q.component) || ' ' || to_char(q.total, %(fmt)s) || '元' END,
                      CASE WHEN p.language = 'en' THEN ', ' ELSE '，' END ORDER BY o.ord) AS parts
      FROM sums q JOIN p ON p.id = q.payment_id
      JOIN unnest(%(comps)s::text[]) WITH ORDINALITY AS o(component, ord) ON o.component = q.component
     WHERE q.total <> 0
     GROUP BY q.payment_id
), ctx AS (
    SELECT p.*,
           COALESCE(NULLIF(concat_ws(CASE WHEN p.language = 'en' THEN ', ' ELSE '，' END, paid.parts,
               CASE WHEN p.credited_amount <> 0 THEN
                    CASE WHEN p.language = 'en' THEN 'credit balance ' || to_char(p.credited_amount, %(fmt)s)
                         ELSE '挂账余额 ' || to_char(p.credited_amount, %(fmt)s) || '元' END END), ''), '-')
               AS paid_for,
           CASE WHEN p.loan_status = 'settled'
                THEN CASE WHEN p.language = 'en' THEN 'Your loan is now settled in full.' ELSE '您的贷款已全部结清。' END
                WHEN nx.due_date IS NULL THEN ''
                WHEN p.language = 'en'
                THEN 'Next due: CNY ' || to_char(nx.owed, %(fmt)s) || ' on ' || to_char(nx.due_date, 'YYYY-MM-DD') || '.'
                ELSE '下期应还 ' || to_char(nx.owed, %(fmt)s) || ' 元，到期日 ' || to_char(nx.due_date, 'YYYY-MM-DD') || '。'
           END AS next_step
      FROM p
      LEFT JOIN LATERAL (
          SELECT i.due_date,
                 i.principal_due + i.interest_due + i.fee_due + i.penalty_accrued + i.compound_accrued
                 - i.principal_paid - i.interest_paid - i.fee_paid - i.penalty_paid - i.compound_paid
                 - i.principal_waived - i.interest_waived - i.fee_waived - i.penalty_waived - i.compound_waived
                   AS owed
            FROM servicing_instalment i
           WHERE i.loan_id = p.loan_id AND i.status IN ('pending', 'partially_paid', 'overdue')
           ORDER BY i.due_date, i.id LIMIT 1) nx ON p.loan_status <> 'settled'
      LEFT JOIN paid ON paid.payment_id = p.id
)
{OUTBOX_INSERT}
SELECT 'payment_receipt', ch.channel, c.language, c.borrower_id, c.loan_id, 'servicing.payment', c.id::text,
       c.value_date, {dedupe_key_sql("payment_receipt", "servicing.payment", "c.id", "c.value_date")},
       CASE WHEN op.channel IS NOT NULL THEN 'suppressed' ELSE 'queued' END, false,
       jsonb_build_object('borrower_name', c.borrower_name,
                          'contract_no', {masked_contract_sql("c.contract_no")},
                          'lender_name', %(lender)s::text, 'service_phone', %(phone)s::text, 'pay_url', %(pay)s::text,
                          'amount', to_char(c.amount, %(fmt)s), 'value_date', to_char(c.value_date, 'YYYY-MM-DD'),
                          'paid_for', c.paid_for, 'next_step', c.next_step),
       %(scheduled)s, NULL, 0, '', '', '',
       CASE WHEN op.channel IS NOT NULL THEN 'borrower opted out of ' || ch.channel ELSE '' END, now()
  FROM ctx c
 CROSS JOIN unnest(%(channels)s::text[]) AS ch(channel)
  LEFT JOIN notices_channelpreference op ON op.borrower_id = c.borrower_id AND op.channel = ch.channel
                                        AND op.opted_out AND ch.channel <> 'in_app'
 WHERE ch.channel <> 'email' OR c.email <> ''
ON CONFLICT (dedupe_key) DO NOTHING
"""


# the debits a file answered, a range of its lines at a time (debit_answer_once_per_file_line). Ranges, not "after
# line n, LIMIT size": right after an import the statistics still say the file answered no debit, and a LIMIT
# query then read and sorted every answer after n for each block (quadratic in the file).
FILE_PAYMENTS_SQL = """
SELECT d.payment_id
  FROM servicing_debit d
 WHERE d.result_file_id = %s AND d.result_line > %s AND d.result_line <= %s AND d.status = 'succeeded'
   AND d.payment_id IS NOT NULL
 ORDER BY d.result_line"""

def file_line_ranges(result_file_id: int, size: int | None = None) -> list[tuple[int, int]]:
    """The file's answered lines as ranges (after, up to] of `size` lines (default: the import's chunk size)."""
    from .results import chunk_size

    size = size or chunk_size()
    with connection.cursor() as cur:
        # the file's last answer from the end of its index (a MAX() here, planned on statistics that do not know
        # the file yet, read every answer of a 1M-row file: 0.3 s)
        cur.execute("SELECT result_line FROM servicing_debit WHERE result_file_id = %s AND result_line IS NOT NULL "
                    "ORDER BY result_line DESC LIMIT 1", [result_file_id])
        row = cur.fetchone()
    return [(after, after + size) for after in range(0, row[0] if row else 0, size)]


def file_payments(result_file_id: int, lines: tuple[int, int]) -> list[int]:
    """The payments of the succeeded rows of a result file in a range of its lines (set-based or per-loan
    path alike), in line order."""
    with connection.cursor() as cur:
        cur.execute(FILE_PAYMENTS_SQL, [result_file_id, *lines])
        return [r[0] for r in cur.fetchall()]


def file_payment_blocks(result_file_id: int, size: int | None = None) -> Iterator[list[int]]:
    """file_payments a block of `size` lines at a time: memory stays that of one block whatever the file's size."""
    for lines in file_line_ranges(result_file_id, size):
        if block := file_payments(result_file_id, lines):
            yield block


def file_receipts(result_file_id: int) -> dict:
    """The receipts of a result file's payments, called in the transaction that marks the file processed:
    inline (notify() per payment) for a few, else a django-q2 task for the file (`queue_file_receipts`),
    enqueued with this transaction (servicing.queueing) — the ORM broker commits it with the file's status,
    and a crash before that re-runs the whole step. Both are idempotent on the notices' dedupe key."""
    few: list[int] = []
    for block in file_payment_blocks(result_file_id):
        few += block
        if len(few) > bulk_threshold():
            break
    if len(few) <= bulk_threshold():
        from servicing.tasks import send_payment_receipts

        return {"payments": len(few), "inline": send_payment_receipts(few) if few else 0}
    from servicing.queueing import enqueue_with_transaction

    task = enqueue_with_transaction("servicing.services.debits.bulk_notices.queue_file_receipts", result_file_id,
                                    task_name=f"receipts-result-file-{result_file_id}")
    return {"task": task}


def queue_file_receipts(result_file_id: int) -> int:
    """django-q2 task: payment_receipt for every succeeded payment of a result file, set-based, in blocks
    of lines as the import's chunks, each one transaction; a big file's blocks on as many connections at once
    as its import's chunks (results.chunk_workers). Re-running it (at-least-once delivery, or after a worker was
    killed) queues only what is missing."""
    from django.db import transaction

    from .results import chunk_workers

    ranges = file_line_ranges(result_file_id)
    queued: list[int] = []

    def one_block(lines: tuple[int, int]) -> None:
        with transaction.atomic():
            with connection.cursor() as cur:
                chunk_settings(cur)
            if block := file_payments(result_file_id, lines):
                queued.append(queue_receipts(block))

    run_chunks(one_block, ranges, chunk_workers(len(ranges), ranges[-1][1] if ranges else 0),
               after_each=lambda n: fault("receipts_block", n))
    return sum(queued)


def queue_receipts(payment_ids: list[int], *, now=None) -> int:
    """payment_receipt for every payment in `payment_ids`, in one INSERT …
    SELECT; the context is that of events._payment_context (the allocations of the payment, the next open
    instalment or the settlement sentence) computed in SQL from the committed-to-be state of the chunk."""
    from notices.services.events import COMPONENT_LABELS

    spec = event_spec("payment_receipt")
    assert set(spec.all_variables) == {"borrower_name", "contract_no", "lender_name", "service_phone", "pay_url",
                                       "amount", "value_date", "paid_for", "next_step"}, spec.all_variables
    assert not spec.mandatory and not spec.collection
    import json

    now = now or timezone.now()
    scheduled = next_allowed_time(now)
    params = {"en": json.dumps(COMPONENT_LABELS["en"]), "zh": json.dumps(COMPONENT_LABELS["zh-hans"]),
              "comps": list(COMPONENT_LABELS["zh-hans"]), "fmt": "FM999,999,999,999,990.00",
              "lender": business("LENDER_NAME", ""), "phone": conf("SERVICE_PHONE"),
              "pay": public_url(conf("PAY_PATH")), "scheduled": scheduled, "channels": list(spec.channels),
              "ids": list(payment_ids)}
    with connection.cursor() as cur:
        cur.execute(RECEIPTS_SQL, params)
        n = cur.rowcount
    if n and scheduled <= now:
        wake_dispatcher()
    return n
