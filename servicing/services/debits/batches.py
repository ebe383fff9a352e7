"""Building and exporting debit batches (送盘), set-based.

`create_debit_batch(d, channel)` picks, set-based, every loan with an active mandate on the channel that has
something due: an instalment due today, a retry due today, or a re-presentment after an incident. The amount is
everything due on the loan (less its credit balance), never split. Loans it considered but did not debit get a
recorded reason (DebitSkip). The partial unique index `one_debit_in_flight_per_loan` is the final guard: a loan
with a debit planned, submitted or unknown is never debited again. Running the same date and channel again
returns the existing batch.

A big batch is built in chunks of loan ids (`REPAYDESK_DEBIT_CHUNK` ids each, at most MAX_CHUNKS), each chunk
one transaction, `REPAYDESK_DEBIT_WORKERS` chunks at a time on their own connections. The batch is `building`
until every chunk is in: each chunk records itself in the batch's `stats["done"]` in its own transaction, so a
run killed half-way leaves the chunks it finished and the re-run (`create_debit_batch` again, or
`build_debit_batch_chunk` from a task queue) does only the missing ones; the last step (`finish`) counts the
batch and opens it. A batch of one chunk, or one built inside the caller's transaction, is one transaction:
killed, it leaves nothing.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from servicing.models import Channel, DebitBatch
from servicing.models.debits import BatchStatus
from servicing.services import audit
from servicing.sql import chunk_settings, read_by_index, run_chunks

from .faults import fault
from .profiles import debit_layout, pg_date_format

OUTSTANDING_SQL = """(i.principal_due + i.interest_due + i.fee_due + i.penalty_accrued + i.compound_accrued
    - i.principal_paid - i.interest_paid - i.fee_paid - i.penalty_paid - i.compound_paid
    - i.principal_waived - i.interest_waived - i.fee_waived - i.penalty_waived - i.compound_waived)"""


def instalment_status_sql(*, paid_now: str, waived_now: str, as_of: str) -> str:
    """The SET of an instalment's status and paid_on, in an UPDATE (alias i) that adds `paid_now` to what it paid and
    `waived_now` to what was waived, as of the date `as_of`: payments.instalment_status in SQL (the right-hand side
    reads the row as it was before the update)."""
    owed_after = f"{OUTSTANDING_SQL} - ({paid_now}) - ({waived_now})"
    return f"""status = CASE WHEN i.status = 'superseded' THEN i.status
                            WHEN {owed_after} = 0 THEN 'paid'
                            WHEN i.due_date < {as_of} THEN 'overdue'
                            WHEN i.principal_paid + i.interest_paid + i.fee_paid + i.penalty_paid + i.compound_paid
                                 + ({paid_now}) > 0 THEN 'partially_paid'
                            ELSE 'pending' END,
              paid_on = CASE WHEN i.status <> 'superseded' AND {owed_after} = 0 THEN COALESCE(i.paid_on, {as_of})
                             ELSE i.paid_on END"""

CHUNK_LOANS = 50_000  # loan ids per chunk (REPAYDESK_DEBIT_CHUNK)
MAX_CHUNKS = 200  # performance.md: at most 200 tasks for a 1M-row job; wider chunks beyond that
WORKERS = 2  # chunks built at the same time, each on its own connection (REPAYDESK_DEBIT_WORKERS)
ANALYZE_AT = 100_000  # debits in a new batch from which servicing_debit is analyzed once it is built


class BatchError(ValueError):
    pass


@dataclass
class BatchResult:
    batch: DebitBatch
    created: bool
    count: int
    amount: Decimal


# The candidates of one chunk: loans lo <= id < hi. The range is repeated on every table read (PostgreSQL
# carries equalities across a join, not ranges), so that each chunk reads its own slice of loans, mandates,
# instalments and debits through their loan_id indexes instead of whole tables. The in-flight debit of a
# loan (at most one, by the partial unique index on in_flight) comes from that index.
CANDIDATES_SQL = f"""
CREATE TEMP TABLE _debit_cand ON COMMIT DROP AS
WITH due AS (
    SELECT i.loan_id,
           SUM({OUTSTANDING_SQL}) AS owed,
           bool_or(i.due_date = %(d)s) AS due_today,
           (array_agg(i.id ORDER BY i.due_date DESC, i.id DESC))[1] AS newest_inst,
           (array_agg(i.id ORDER BY i.due_date DESC, i.id DESC) FILTER (WHERE i.due_date < %(d)s))[1] AS past_inst,
           MAX(i.due_date) FILTER (WHERE i.due_date < %(d)s) AS past_due
      FROM servicing_instalment i
     WHERE i.status IN ('pending', 'partially_paid', 'overdue') AND i.due_date <= %(d)s
       AND i.loan_id >= %(lo)s AND i.loan_id < %(hi)s
     GROUP BY i.loan_id
), rs AS (
    SELECT DISTINCT ON (r.loan_id) r.loan_id, r.instalment_id, r.next_kind, i.due_date
      FROM servicing_retrystate r JOIN servicing_instalment i ON i.id = r.instalment_id
     WHERE r.status = 'scheduled' AND r.next_retry_on <= %(d)s
       AND r.loan_id >= %(lo)s AND r.loan_id < %(hi)s
       AND i.status IN ('pending', 'partially_paid', 'overdue')
     ORDER BY r.loan_id, i.due_date, i.id
), base AS MATERIALIZED (
    SELECT l.id AS loan_id, m.id AS mandate_id, m.single_limit, l.credit_balance, due.owed,
           (due.due_today AND NOT EXISTS (SELECT 1 FROM servicing_debit x
                                           WHERE x.loan_id = l.id AND x.due_date = %(d)s
                                             AND x.loan_id >= %(lo)s AND x.loan_id < %(hi)s)) AS first_today,
           due.newest_inst, rs.instalment_id AS retry_inst, rs.next_kind, rs.due_date AS retry_due,
           -- catch-up: an overdue instalment no debit ever covered (e.g. it fell due while an unknown debit
           -- blocked the loan), unless ops already hold it as a missed-debit exception
           (due.past_inst IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM servicing_debit x WHERE x.loan_id = l.id AND x.due_date >= due.past_due
                             AND x.status <> 'cancelled' AND x.loan_id >= %(lo)s AND x.loan_id < %(hi)s)
            AND NOT EXISTS (SELECT 1 FROM servicing_misseddebitexception me
                             WHERE me.instalment_id = due.past_inst)) AS catch_up,
           due.past_inst, due.past_due
      FROM due
      JOIN servicing_loan l ON l.id = due.loan_id AND l.status IN ('active', 'overdue')
                            AND l.id >= %(lo)s AND l.id < %(hi)s
      JOIN servicing_loanproduct p ON p.id = l.product_id AND p.auto_debit
      JOIN servicing_mandate m ON m.loan_id = l.id AND m.status = 'active' AND m.channel_id = %(ch)s
                              AND m.loan_id >= %(lo)s AND m.loan_id < %(hi)s
      LEFT JOIN rs ON rs.loan_id = l.id
)
SELECT b.loan_id, b.mandate_id,
       GREATEST(b.owed - b.credit_balance, 0) AS amount,
       CASE WHEN b.first_today THEN b.newest_inst WHEN b.retry_inst IS NOT NULL THEN b.retry_inst
            ELSE b.past_inst END AS instalment_id,
       CASE WHEN b.first_today THEN %(d)s::date WHEN b.retry_inst IS NOT NULL THEN b.retry_due
            ELSE b.past_due END AS due_date,
       CASE WHEN b.first_today THEN 'due' WHEN b.retry_inst IS NOT NULL THEN b.next_kind ELSE 'due' END AS kind,
       CASE WHEN fl.status = 'unknown' THEN 'unknown_pending'
            WHEN fl.status IS NOT NULL THEN 'in_flight'
            WHEN EXISTS (SELECT 1 FROM servicing_incidentloan il JOIN servicing_incident inc ON inc.id = il.incident_id
                          WHERE il.loan_id = b.loan_id AND inc.status = 'open' AND inc.channel_id = %(ch)s)
                 THEN 'incident_hold'
            WHEN b.owed - b.credit_balance <= 0 THEN 'covered_by_credit'
            WHEN b.single_limit IS NOT NULL AND b.owed - b.credit_balance > b.single_limit THEN 'above_single_limit'
       END AS skip_reason,
       CASE WHEN b.single_limit IS NOT NULL AND b.owed - b.credit_balance > b.single_limit
            THEN 'due ' || (b.owed - b.credit_balance)::text || ' > limit ' || b.single_limit::text ELSE '' END AS detail
  FROM base b
  LEFT JOIN servicing_debit fl ON fl.loan_id = b.loan_id AND fl.in_flight
                               AND fl.loan_id >= %(lo)s AND fl.loan_id < %(hi)s
 WHERE b.first_today OR b.retry_inst IS NOT NULL OR b.catch_up
"""

INSERT_DEBITS_SQL = """
INSERT INTO servicing_debit (reference, batch_id, loan_id, mandate_id, instalment_id, due_date, attempt, kind,
                             amount, status, category, result_code, result_message, channel_txn_id,
                             created_at, updated_at)
SELECT 'D' || %(ds)s || '-' || lpad(nextval('servicing_debit_ref_seq')::text, 9, '0'),
       %(batch)s, c.loan_id, c.mandate_id, c.instalment_id, c.due_date,
       COALESCE(prev.attempt + 1, 0),
       c.kind, c.amount, 'planned', '', '', '', '', now(), now()
  FROM _debit_cand c
  LEFT JOIN LATERAL (SELECT x.attempt FROM servicing_debit x
                      WHERE x.loan_id = c.loan_id AND x.due_date = c.due_date
                      ORDER BY x.attempt DESC LIMIT 1) prev ON true
 WHERE c.skip_reason IS NULL
 ORDER BY c.loan_id
"""

INSERT_SKIPS_SQL = """
INSERT INTO servicing_debitskip (loan_id, instalment_id, channel_id, business_date, reason, detail, created_at)
SELECT c.loan_id, c.instalment_id, %(ch)s, %(d)s, c.skip_reason, c.detail, now()
  FROM _debit_cand c WHERE c.skip_reason IS NOT NULL
ON CONFLICT (loan_id, business_date) DO NOTHING
"""

# the retries this chunk's debits present (the loans it debited: its candidates without a skip reason)
CONSUME_RETRIES_SQL = """
UPDATE servicing_retrystate r SET status = 'in_flight', retries_used = r.retries_used + 1, updated_at = now()
 WHERE r.status = 'scheduled' AND r.next_retry_on <= %(d)s
   AND r.loan_id IN (SELECT c.loan_id FROM _debit_cand c WHERE c.skip_reason IS NULL)
"""


def batch_reference(channel: Channel, d: date) -> str:
    return f"B{d:%Y%m%d}-{channel.code}"


def _setting(name: str, default: int) -> int:
    return max(1, int(os.environ.get(name) or default))


def _plan() -> dict:
    """The chunks of a new batch: loan ids [lo, lo + chunks * width) in `chunks` ranges of `width` ids."""
    with connection.cursor() as cur:
        cur.execute("SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) FROM servicing_loan")
        lo, hi = cur.fetchone()
    span = hi - lo + 1
    width = _setting("REPAYDESK_DEBIT_CHUNK", CHUNK_LOANS)
    chunks = -(-span // width)
    if chunks > MAX_CHUNKS:
        chunks = MAX_CHUNKS
        width = -(-span // chunks)
    return {"lo": lo, "width": width, "chunks": chunks, "done": {}}


def create_debit_batch(d: date, channel: Channel, *, user=None) -> BatchResult:
    """Build (or return the existing) batch of what is due to be debited on `d` through `channel`.

    A batch left `building` by a killed run is completed: only its missing chunks are built.
    """
    if not channel.is_active or channel.kind != Channel.Kind.BANK:
        raise BatchError(f"channel: '{channel.code}' is not an active bank channel")
    existing = DebitBatch.objects.filter(channel=channel, business_date=d).first()
    if existing is not None and existing.status != BatchStatus.BUILDING:
        return _result(existing, created=False)
    if existing is None:
        plan = _plan()
        one_transaction = plan["chunks"] == 1 or connection.in_atomic_block
        try:
            with transaction.atomic():
                batch = DebitBatch.objects.create(reference=batch_reference(channel, d), channel=channel,
                                                  business_date=d, status=BatchStatus.BUILDING, stats=plan)
                if one_transaction:
                    for chunk in range(plan["chunks"]):
                        build_debit_batch_chunk(batch.pk, chunk)
                    return finish(batch.pk, user=user)
        except IntegrityError:
            # a concurrent run for the same date and channel won the unique constraint: use its batch
            existing = DebitBatch.objects.filter(channel=channel, business_date=d).first()
            if existing is None:
                raise
            if existing.status != BatchStatus.BUILDING:
                return _result(existing, created=False)
            batch = existing
    else:
        batch = existing
    _build_chunks(batch.pk, _setting("REPAYDESK_DEBIT_WORKERS", WORKERS))
    result = finish(batch.pk, user=user)
    if result.created and result.count >= ANALYZE_AT and not connection.in_atomic_block:
        # fresh planner statistics for the export and the result import that read this batch next: without
        # them a young table's estimate for "batch_id = X" is a few rows, and the export joins 1M debits to
        # loans, borrowers and mandates by nested loops (26 s instead of 13 s at 1M)
        with connection.cursor() as cur:
            cur.execute("ANALYZE servicing_debit")
    return result


def _build_chunks(batch_id: int, workers: int) -> None:
    """Every chunk not yet in, `workers` at a time, each in its own transaction (a connection per thread)."""
    stats = DebitBatch.objects.values_list("stats", flat=True).get(pk=batch_id)
    todo = [c for c in range(stats["chunks"]) if str(c) not in stats["done"]]
    run_chunks(lambda chunk: build_debit_batch_chunk(batch_id, chunk), todo, workers)


def build_debit_batch_chunk(batch_id: int, chunk: int) -> dict:
    """Build one chunk of a `building` batch, in one transaction; a chunk already in is left alone.

    Safe to run twice at once (an advisory lock per chunk; the second finds it done) and after a crash.
    """
    own_transaction = not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"debit-batch:{batch_id}:{chunk}"])
        cur.execute("SELECT b.status, b.business_date, b.channel_id, (b.stats->>'lo')::bigint, "
                    "(b.stats->>'width')::bigint, b.stats->'done'->>%s FROM servicing_debitbatch b WHERE b.id = %s",
                    [str(chunk), batch_id])
        status, d, channel_id, lo, width, done = cur.fetchone()
        if status != BatchStatus.BUILDING or done is not None:
            return json.loads(done) if done else {}
        lo += chunk * width
        params = {"d": d, "ds": f"{d:%Y%m%d}", "ch": channel_id, "batch": batch_id, "lo": lo, "hi": lo + width}
        # the chunks are the parallelism: no parallel query workers on top of them
        chunk_settings(cur)
        cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        # every book table is read by its loan_id index here, never scanned whole: on the first batch after a
        # deploy, servicing_debit was vacuumed empty and the planner believes it is, so it picked a seq scan for
        # the per-candidate "previous attempt" lookup, and each probe then read every row the batch had
        # inserted so far (chunk 0 of a 1M-loan first batch ran for minutes instead of a second)
        read_by_index(cur)
        cur.execute(CANDIDATES_SQL, params)
        cur.execute(INSERT_DEBITS_SQL, params)
        fault("batch_insert", chunk + 1)
        cur.execute(CONSUME_RETRIES_SQL, params)
        cur.execute(INSERT_SKIPS_SQL, params)
        cur.execute("SELECT skip_reason, COUNT(*) FROM _debit_cand WHERE skip_reason IS NOT NULL "
                    "GROUP BY skip_reason")
        skipped = dict(cur.fetchall())
        cur.execute("SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM _debit_cand WHERE skip_reason IS NULL")
        count, amount = cur.fetchone()
        cur.execute("DROP TABLE _debit_cand")
        if own_transaction:
            # the deferred FK checks of the chunk's rows now, so that the batch row updated below is locked
            # only for the commit (every chunk updates it)
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        result = {"planned": count, "amount": f"{amount:.2f}", "skipped": skipped}
        cur.execute("UPDATE servicing_debitbatch SET stats = jsonb_set(stats, ARRAY['done', %s], %s::jsonb) "
                    "WHERE id = %s", [str(chunk), json.dumps(result), batch_id])
    return result


def finish(batch_id: int, *, user=None) -> BatchResult:
    """Open a `building` batch once every chunk is in: count and sum it, record it. Idempotent."""
    with transaction.atomic():
        batch = DebitBatch.objects.select_for_update().get(pk=batch_id)
        if batch.status != BatchStatus.BUILDING:
            return _result(batch, created=False)
        missing = batch.stats["chunks"] - len(batch.stats["done"])
        if missing:
            raise BatchError(f"batch: {batch.reference} is still being built ({missing} chunks missing); "
                             "run create_debit_batch again")
        # the chunks' own figures (each counted what it inserted, in its transaction): no scan of the batch
        count, amount, skipped = 0, Decimal("0.00"), {}
        for part in batch.stats["done"].values():
            count += part["planned"]
            amount += Decimal(part["amount"])
            for reason, n in part["skipped"].items():
                skipped[reason] = skipped.get(reason, 0) + n
        batch.stats = {"planned": count, "planned_amount": f"{amount:.2f}", "skipped": skipped,
                       "chunks": batch.stats["chunks"]}
        batch.status = BatchStatus.OPEN
        batch.save(update_fields=["stats", "status"])
        audit.record("debit_batch.created", batch, actor=user, count=count, amount=amount)
    return BatchResult(batch, True, count, amount)


def _result(batch: DebitBatch, *, created: bool) -> BatchResult:
    from django.db.models import Count, Sum

    agg = batch.debits.exclude(status="cancelled").aggregate(n=Count("id"), s=Sum("amount"))
    return BatchResult(batch, created, agg["n"] or 0, agg["s"] or Decimal("0.00"))


EXPORT_FIELDS_SQL = {
    "reference": "d.reference",
    "batch_ref": "b.reference",
    "seq": "(row_number() OVER (ORDER BY d.id))::text",
    "contract_no": "l.contract_no",
    "borrower_name": "bo.name",
    "account_name": "m.account_name",
    "account_no": "m.account_no",
    "bank_code": "m.bank_code",
    "currency": "'CNY'",
}


def _export_select(layout, statuses: tuple[str, ...]) -> tuple[str, list]:
    """The export rows as text columns, for COPY … TO STDOUT (FORMAT csv).

    Empty strings are sent as NULL (COPY writes NULL as an empty unquoted field and would quote an empty
    string), so the CSV quoting is the csv module's QUOTE_MINIMAL: a field is quoted only when it holds the
    delimiter, a quote or a line break.
    """
    pattern, _ = pg_date_format(layout.date_format)
    cols = []
    for field in layout.fields:
        if field == "amount":
            cols.append("(d.amount * 100)::bigint::text" if layout.amount_unit == "fen" else "d.amount::text")
        elif field == "due_date":
            cols.append(f"to_char(d.due_date, '{pattern}')")
        else:
            cols.append(f"NULLIF(({EXPORT_FIELDS_SQL[field]})::text, '')")
    sql = f"""SELECT {", ".join(cols)} FROM servicing_debit d
               JOIN servicing_debitbatch b ON b.id = d.batch_id
               JOIN servicing_loan l ON l.id = d.loan_id
               JOIN servicing_borrower bo ON bo.id = l.borrower_id
               JOIN servicing_mandate m ON m.id = d.mandate_id
              WHERE d.batch_id = %s AND d.status = ANY(%s) ORDER BY d.id"""
    return sql, list(statuses)


EXPORT_BLOCK = 1 << 20  # bytes of COPY output transcoded and written at a time


def _copy_out(sql: str, params: list, layout, fh, encoder) -> None:
    """Stream `sql` through COPY TO STDOUT (CSV, UTF-8 from the server) into `fh`, transcoded to the
    profile's encoding and line ending in blocks of ~1 MB: memory stays flat whatever the batch size."""
    delim = layout.delimiter.replace("'", "''")
    copy_sql = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, DELIMITER '{delim}', ENCODING 'UTF8')"
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    crlf = layout.line_ending == "\r\n"
    buf: list[bytes] = []
    size = 0

    def flush(final: bool = False) -> None:
        text = decoder.decode(b"".join(buf), final=final)
        if crlf:
            text = text.replace("\n", "\r\n")
        fh.write(encoder.encode(text))

    with connection.connection.cursor() as pcur:
        # COPY with a server-side bind needs literals: the params are an id and a list of status words
        batch_id, statuses = params
        literal = "ARRAY[" + ", ".join("'" + s.replace("'", "''") + "'" for s in statuses) + "]::text[]"
        with pcur.copy(copy_sql.replace("%s", str(int(batch_id)), 1).replace("%s", literal, 1)) as copy:
            for block in copy:
                buf.append(bytes(block))
                size += len(block)
                if size >= EXPORT_BLOCK:
                    flush()
                    buf, size = [], 0
    flush(final=True)


def export_debit_batch(batch: DebitBatch, out: str | Path, *, user=None) -> dict:
    """Write the batch in the channel's profile layout; mark it exported; its debits become submitted.

    Re-exporting an exported batch writes the same file again (same rows, same order). The file holds the
    header (if the profile has one), one line per debit and a trailer only when the profile asks for one.
    The rows are streamed with COPY … TO STDOUT and written in blocks in the profile's encoding.
    """
    batch = DebitBatch.objects.select_related("channel").get(pk=batch.pk)
    if batch.status == BatchStatus.BUILDING:
        raise BatchError(f"batch: {batch.reference} is still being built; run create_debit_batch again to finish it")
    if batch.status not in (BatchStatus.OPEN, BatchStatus.EXPORTED):
        raise BatchError(f"batch: {batch.reference} is {batch.status}; its results are in, it cannot be re-sent")
    layout = debit_layout(batch.channel)
    # An open batch's debits are marked submitted first, then read for the file (below). None is left planned
    # then, but the statistics may still say that every debit of a new batch is: asked for "submitted" alone, the
    # planner expected one row and read a million by nested loops and an on-disk sort (13.1 s against 8.2 s).
    statuses = (("planned", "submitted") if batch.status == BatchStatus.OPEN
                else ("submitted", "succeeded", "failed", "unknown"))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    sql, params = _export_select(layout, statuses)
    sha = hashlib.sha256()
    with transaction.atomic():
        locked = DebitBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status != batch.status:
            raise BatchError(f"batch: {batch.reference} changed while exporting; run again")
        with connection.cursor() as cur:
            chunk_settings(cur)  # the ORDER BY of 1M rows sorted in memory, not on disk
            if batch.status == BatchStatus.OPEN:
                # Marked before the file is read, in this transaction: a payment's hook (hooks.after_payment, which
                # cancels or lowers a loan's planned debit) now waits for the export and then leaves the debit
                # alone, as it is submitted. Marked after the read, a debit cancelled or lowered in between went
                # to the bank as read while the book said otherwise.
                cur.execute("UPDATE servicing_debit SET status = 'submitted', updated_at = now() "
                            "WHERE batch_id = %s AND status = 'planned'", [batch.pk])
            cur.execute("SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM servicing_debit "
                        "WHERE batch_id = %s AND status = ANY(%s)", [batch.pk, list(statuses)])
            count, total = cur.fetchone()
        # one incremental encoder for the whole file: a BOM (utf-8-sig) is written once, at the start
        encoder = codecs.getincrementalencoder(layout.encoding)(errors="strict")
        with open(tmp, "wb") as fh:
            text = io.StringIO()
            writer = csv.writer(text, delimiter=layout.delimiter, lineterminator=layout.line_ending)
            if layout.header:
                writer.writerow(layout.headers)
            fh.write(encoder.encode(text.getvalue()))
            _copy_out(sql, [batch.pk, params], layout, fh, encoder)
            if layout.trailer:
                text = io.StringIO()
                writer = csv.writer(text, delimiter=layout.delimiter, lineterminator=layout.line_ending)
                amount_text = str(int(total * 100)) if layout.amount_unit == "fen" else f"{total:.2f}"
                writer.writerow([layout.trailer["prefix"], str(count), amount_text])
            else:
                text = io.StringIO()
            fh.write(encoder.encode(text.getvalue(), final=True))
        os.replace(tmp, out)
        with open(out, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                sha.update(block)
        DebitBatch.objects.filter(pk=batch.pk).update(
            status=BatchStatus.EXPORTED, control_count=count, control_amount=total,
            exported_at=locked.exported_at or timezone.now(), exported_path=str(out), export_sha256=sha.hexdigest())
        audit.record("debit_batch.exported", batch, actor=user, count=count, amount=total, path=str(out))
    return {"batch": batch.reference, "count": count, "amount": f"{total:.2f}", "path": str(out)}

