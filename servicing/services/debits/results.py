"""Importing a bank result file (回盘): once per file, structure all-or-nothing, content row by row.

One service for the command, the admin upload (with a dry-run preview) and the API:
:func:`import_debit_results`.

1. The file is kept under MEDIA_ROOT/debit_results/ and identified by its SHA-256: a file already
   processed answers ``already_imported`` and changes nothing.
2. It is decoded with the profile's encoding and streamed through COPY into an UNLOGGED staging table
   (bounded memory whatever its size). Undecodable bytes, a header that is not the profile's, or a
   reference belonging to another channel reject the whole file (exit 3): nothing is applied.
3. Validation is set-based: each row is classified in SQL (garbage amount, unknown status word,
   duplicate reference, unknown reference, amount mismatch, result contradicting a final outcome) and bad
   rows become reconciliation exceptions with their line number, raw text and reason.
4. Good rows are applied in chunks, each chunk one transaction: conditional debit updates (a debit already
   final with the same outcome is left alone, so a re-run after a crash re-applies nothing) writing each
   debit's answer on it (an unknown debit's earlier answer kept, answers.py), payments (set-based, see
   posting.py) and failure actions (failures.py).
5. The borrowers' payment receipts follow the chunks, for every succeeded payment of the file: inline for a
   few, else one django-q2 task per file enqueued in the transaction that marks the file processed
   (bulk_notices.file_receipts / queue_file_receipts; idempotent on the notices' dedupe key).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import os
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pghistory
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from servicing.models import Channel, DebitBatch, ResultFile
from servicing.models.debits import BatchStatus, ResultFileStatus
from servicing.services import audit
from servicing.sql import chunk_settings, define_trigger_settings, run_chunks

from .answers import keep_earlier_answers
from .bulk_notices import file_receipts
from .failures import apply_failed_debits
from .faults import fault
from .policy import CATEGORIES
from .posting import post_succeeded_debits
from .profiles import FileLayout, ProfileError, result_layout

FAILED_CATEGORIES = [c for c in CATEGORIES if c not in ("unknown", "debited_not_posted")]
MAX_ERRORS_LISTED = 200


class ResultFileRejected(ValueError):
    """The file's structure is wrong: nothing was applied."""


class _Rollback(Exception):
    pass


def chunk_size() -> int:
    """Lines of a result file applied in one transaction (and, after it, receipted in one)."""
    return int(os.environ.get("REPAYDESK_IMPORT_CHUNK") or settings.REPAYDESK.get("IMPORT_CHUNK", 20000))


def _kept(digest: str) -> Path | None:
    """The copy kept when this content first came (its ResultFile says where), whatever name it came under."""
    path = ResultFile.objects.filter(sha256=digest).values_list("path", flat=True).first()
    return Path(path) if path and Path(path).exists() else None


def _store(source: str | Path | bytes, name: str | None) -> tuple[Path, str, str, int]:
    """Keep the file under MEDIA_ROOT/debit_results, once per content; return (path, sha256, name, size)."""
    folder = Path(settings.MEDIA_ROOT) / "debit_results"
    folder.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256()
    if isinstance(source, bytes | bytearray):
        sha.update(source)
        digest = sha.hexdigest()
        name = name or f"{digest[:12]}.txt"
        path = _kept(digest) or folder / f"{digest}_{Path(name).name}"
        if not path.exists():
            path.write_bytes(source)
        return path, digest, name, len(source)
    src = Path(source)
    with open(src, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    digest = sha.hexdigest()
    name = name or src.name
    path = _kept(digest) or folder / f"{digest}_{Path(name).name}"
    if not path.exists():
        tmp = path.with_name(path.name + ".part")
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            for block in iter(lambda: fin.read(1 << 20), b""):
                fout.write(block)
        os.replace(tmp, path)
    return path, digest, name, src.stat().st_size


def _first_undecodable_line(path: Path, encoding: str) -> int:
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError:
                return n
    return 0


STAGE_BLOCK = 1 << 20  # characters of COPY text per write
# COPY text format: backslash, tab and line breaks inside a value are escaped
_COPY_SPECIAL = re.compile(r"[\\\t\r\n]")
_COPY_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _only_line_breaks(text: str) -> bool:
    """No white space in `text` but its line breaks (str.split() without arguments splits at any)."""
    return len("".join(text.split())) == len(text) - text.count("\n")


def _plain_block(block: str, delim: str, ncols: int, trailer: str | None) -> list[str] | None:
    """The lines of a block of the file, values tab-separated, when nothing in it needs parsing; else None.

    Nothing needs parsing when every line has the profile's column count, no value is quoted (an empty ""
    is just empty), nothing COPY must escape, no value has white space around it (csv values are
    stripped) and no line is a trailer. Then a line's values are its text split at the delimiter, exactly
    as the csv module reads it: nearly every block of a bank file, checked with a few C-level scans.
    """
    if "\r" in block:
        block = block.replace("\r\n", "\n")
    if '"' in block:
        block = re.sub(rf'{re.escape(delim)}""(?=[{re.escape(delim)}\n]|$)', lambda m: delim, block)
    if '"' in block or "\\" in block or "\t" in block or "\r" in block or "\0" in block:
        return None
    lines = block.split("\n")
    if lines[-1] == "":
        lines.pop()
    k = len(lines)
    if set(map(str.count, lines, itertools.repeat(delim, k))) != {ncols - 1}:
        return None
    if not _only_line_breaks(block):  # other white space is fine only as ASCII spaces inside values
        if (f"{delim} " in block or f" {delim}" in block or "\n " in block or " \n" in block
                or block[0] == " " or block[-1] == " " or not _only_line_breaks(block.replace(" ", ""))):
            return None
    if trailer and ("\n" + block).find("\n" + trailer) >= 0:
        return None
    return block.replace(delim, "\t").split("\n")[:k]


class _LineTap:
    """The file's lines as the csv module reads them, keeping the text of the record it is reading: the csv
    module takes a record's lines one by one and none after its last, so `record()` is the record as written."""

    def __init__(self, lines):
        self._lines = iter(lines)
        self._taken: list[str] = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self._taken.append(line)
        return line

    def record(self) -> str:
        text = "".join(self._taken)
        self._taken.clear()
        return text


def _stage(path: Path, layout: FileLayout, table: str) -> int:
    """Stream the file into the staging table; returns rows staged. Raises ResultFileRejected.

    The file is read in blocks of ~1 MB, each ending at a line end, and each block goes to COPY as one
    write (psycopg's write_row per row cost more than the csv parsing itself). A plain block
    (`_plain_block`: nearly every block of a bank file) becomes COPY text with a few string operations
    over the whole block, its `raw` left NULL (a row that becomes an exception gets its line back from its values:
    the line itself, but for an empty quoted value "", which comes back empty); any other block is read line by
    line, each line split and its values cleaned, its `raw` the line as written, and from a quoted value that
    goes on to the next line, the rest of the file goes through the csv module. The staged values are the same
    whichever way a line went.
    """
    ncols = len(layout.columns)
    trailer = (layout.trailer or {}).get("prefix")
    fields = layout.fields
    delim = layout.delimiter
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"""CREATE UNLOGGED TABLE {table} (
            line_no integer, raw text, err text, reference text, amount text, status text, code text,
            message text, settled_on text, channel_txn_id text, account_no text)""")
    cols = ["line_no", "raw", "err", *fields]
    esc = _COPY_ESCAPE
    needs_escape = _COPY_SPECIAL.search
    nulls = "\t".join(["\\N"] * ncols)
    plain_line = "{}\t\\N\t\\N\t{}\n".format
    state = {"pos": None, "identity": not layout.header}  # no header: the columns are in the profile's order

    def header(line_no: int, row: list[str]) -> None:
        got = [h.strip() for h in row]
        if sorted(got) != sorted(layout.headers):
            raise ResultFileRejected(f"line {line_no}: header {delim.join(got)!r} is not the profile's "
                                     f"{delim.join(layout.headers)!r}")
        order = {h: i for i, h in enumerate(got)}
        state["pos"] = [order[h] for h in layout.headers]
        state["identity"] = state["pos"] == list(range(ncols))

    def row_line(line_no: int, row: list[str], text: str) -> str | None:
        """The COPY line of a split row, or None for a line that is not a row (blank, trailer). `text` is the
        row as it is in the file: a person reads an exception's line there, quotes and all."""
        if not row or (len(row) == 1 and not row[0].strip()):
            return None
        if trailer and row[0].startswith(trailer):
            return None
        raw = text.rstrip("\r\n")
        clean = not needs_escape(raw)
        if not clean:
            raw = raw.translate(esc)
        if "\0" in raw:  # binary garbage: PostgreSQL text cannot hold it; the row is an exception
            return f"{line_no}\t{raw.replace(chr(0), chr(0xFFFD))}\tNUL byte in the line\t{nulls}\n"
        if len(row) != ncols:
            return f"{line_no}\t{raw}\t{len(row)} columns instead of {ncols}\t{nulls}\n"
        vals = row if state["identity"] else [row[p] for p in state["pos"]]
        body = "\t".join([v.strip() for v in vals] if clean else [v.strip().translate(esc) for v in vals])
        return f"{line_no}\t{raw}\t\\N\t{body}\n"

    n = line_no = offset = 0
    header_seen = not layout.header
    reader = None
    try:
        with open(path, encoding=layout.encoding, errors="strict", newline="") as fh, \
                connection.connection.cursor() as pcur, \
                pcur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
            while reader is None:
                block = fh.read(STAGE_BLOCK)
                if not block:
                    break
                if not block.endswith("\n"):
                    # to the end of the line (after a final "\r", the "\n" of a "\r\n" or the next line)
                    block += fh.readline()
                lines = (_plain_block(block, delim, ncols, trailer)
                         if header_seen and state["identity"] and ncols > 1 else None)
                if lines is not None:
                    copy.write("".join(map(plain_line, range(line_no + 1, line_no + 1 + len(lines)), lines)))
                    line_no += len(lines)
                    n += len(lines)
                    continue
                buf = []
                texts = io.StringIO(block, newline="")
                for text in texts:
                    if '"' in text:
                        row = next(csv.reader([text], delimiter=delim))
                        if any("\n" in v or "\r" in v for v in row):
                            # a quoted value goes on to the next line: the csv module reads the rest of the
                            # file, this line included
                            tap = _LineTap(itertools.chain([text], texts, fh))
                            reader = csv.reader(tap, delimiter=delim)
                            offset = line_no
                            break
                    else:
                        row = text.rstrip("\r\n").split(delim)
                    line_no += 1
                    if not header_seen:
                        header(line_no, row)
                        header_seen = True
                    elif (out := row_line(line_no, row, text)) is not None:
                        buf.append(out)
                copy.write("".join(buf))
                n += len(buf)
            if reader is not None:
                buf, size = [], 0
                for row in reader:
                    text = tap.record()
                    line_no = offset + reader.line_num
                    if not header_seen:
                        header(line_no, row)
                        header_seen = True
                    elif (out := row_line(line_no, row, text)) is not None:
                        buf.append(out)
                        size += len(out)
                        if size >= STAGE_BLOCK:
                            copy.write("".join(buf))
                            n += len(buf)
                            buf, size = [], 0
                copy.write("".join(buf))
                n += len(buf)
            if not header_seen:
                raise ResultFileRejected("line 1: the file is empty; the profile expects a header row")
    except UnicodeDecodeError:
        line = _first_undecodable_line(path, layout.encoding)
        raise ResultFileRejected(f"line {line}: bytes that are not {layout.encoding}; "
                                 f"the file is not in the profile's encoding") from None
    except csv.Error as exc:
        at = line_no + 1 if reader is None else offset + reader.line_num
        raise ResultFileRejected(f"line {at}: {exc}") from None
    return n


def _classify_sql(layout: FileLayout, stage: str, table: str) -> str:
    # the date format as a regex (fixed width: %Y four digits, %m and %d two) and each part's position, so a
    # value is checked with one `~` and read with substr (a LATERAL regexp_match per row cost 6 s per 1M rows)
    width = {"%Y": 4, "%m": 2, "%d": 2}
    regex, pos, i, at = "", {}, 0, 0  # at: characters of a matching value so far
    fmt = layout.date_format
    while i < len(fmt):
        token = fmt[i:i + 2]
        if token in width:
            pos[token] = at
            regex += f"[0-9]{{{width[token]}}}"
            at += width[token]
            i += 2
        else:
            regex += "\\" + fmt[i] if not fmt[i].isalnum() else fmt[i]
            at += 1
            i += 1
    y, m, d = (f"substr(v.settled_on, {pos[t] + 1}, {width[t]})::int" for t in ("%Y", "%m", "%d"))
    amount_regex = r"^\d+$" if layout.amount_unit == "fen" else r"^\d+(\.\d{1,2})?$"
    amount_expr = "(s.amount::numeric / 100)" if layout.amount_unit == "fen" else "s.amount::numeric"
    return f"""
    CREATE UNLOGGED TABLE {table} AS
    WITH base AS (
        SELECT s.line_no, s.err, s.reference, s.amount AS amount_text, s.status AS raw_status,
               COALESCE(s.code, '') AS code, COALESCE(s.message, '') AS message,
               COALESCE(s.channel_txn_id, '') AS channel_txn_id,
               CASE WHEN s.amount ~ '{amount_regex}' THEN round({amount_expr}, 2) END AS amount,
               sv.outcome AS status_outcome, cm.category AS code_category, dt.settled_on_date AS settled_on,
               d.id AS debit_id, d.loan_id, d.amount AS debit_amount, d.status AS debit_status,
               b.business_date AS batch_date, b.id AS batch_id, b.channel_id,
               -- a reference's second and later lines (a hash of the few repeated references, not a sort of
               -- every row by reference)
               CASE WHEN s.line_no > dup.first_line THEN 2 ELSE 1 END AS occurrence, dup.first_line
          FROM {stage} s
          LEFT JOIN unnest(%(sw)s::text[], %(so)s::text[]) AS sv(word, outcome) ON sv.word = s.status
          LEFT JOIN unnest(%(cc)s::text[], %(cg)s::text[]) AS cm(code, category) ON cm.code = s.code
          LEFT JOIN (SELECT reference, min(line_no) AS first_line FROM {stage}
                      GROUP BY reference HAVING count(*) > 1) dup ON dup.reference = s.reference
          -- each distinct settlement date of the file parsed once (a file has a handful; parsed on every row,
          -- its checks were a third of this statement's work)
          LEFT JOIN (SELECT v.settled_on,
                            CASE WHEN v.settled_on ~ '^{regex}$' THEN  -- nested: AND does not promise an order
                                 CASE WHEN {y} BETWEEN 1900 AND 2999 AND {m} BETWEEN 1 AND 12
                                           AND {d} BETWEEN 1 AND extract(day FROM make_date({y}, {m}, 1)
                                                                                + interval '1 month - 1 day')::int
                                      THEN make_date({y}, {m}, {d}) END END AS settled_on_date
                       FROM (SELECT DISTINCT settled_on FROM {stage}) v) dt ON dt.settled_on = s.settled_on
          LEFT JOIN servicing_debit d ON d.reference = s.reference
          LEFT JOIN servicing_debitbatch b ON b.id = d.batch_id
    ), outcome AS (
        SELECT base.*,
               CASE WHEN code_category = 'debited_not_posted' THEN 'succeeded'
                    WHEN status_outcome = 'succeeded' THEN 'succeeded'
                    WHEN status_outcome = 'unknown' OR code_category = 'unknown' THEN 'unknown'
                    ELSE status_outcome END AS outcome,
               CASE WHEN code_category = 'debited_not_posted' THEN 'debited_not_posted'
                    WHEN status_outcome = 'succeeded' THEN 'success'
                    WHEN status_outcome = 'unknown' OR code_category = 'unknown' THEN 'unknown'
                    WHEN code_category IS NULL OR code_category = 'success' THEN 'unclassified'
                    ELSE code_category END AS category
          FROM base
    )
    SELECT o.*,
           CASE WHEN o.err IS NOT NULL THEN 'bad_row'
                WHEN COALESCE(o.reference, '') = '' THEN 'bad_row'
                WHEN o.amount IS NULL THEN 'bad_amount'
                WHEN o.status_outcome IS NULL THEN 'bad_status'
                WHEN o.status_outcome = 'succeeded' AND o.code_category IS NOT NULL
                     AND o.code_category NOT IN ('success', 'debited_not_posted') THEN 'status_code_conflict'
                WHEN o.occurrence > 1 THEN 'duplicate_reference'
                WHEN o.debit_id IS NULL THEN 'unknown_reference'
                WHEN o.amount <> o.debit_amount THEN 'amount_mismatch'
                WHEN o.debit_status = 'planned' THEN 'not_submitted'
                WHEN o.debit_status IN ('succeeded', 'returned') AND o.outcome <> 'succeeded' THEN 'contradicts_final'
                WHEN o.debit_status = 'failed' AND o.outcome <> 'failed' THEN 'contradicts_final'
                WHEN o.debit_status = 'cancelled' THEN 'contradicts_final'
           END AS reason_code
      FROM outcome o
    """


REASON_TEXT_SQL = """
CASE c.reason_code
    WHEN 'bad_row' THEN COALESCE(c.err, 'reference is missing')
    WHEN 'bad_amount' THEN 'amount ''' || COALESCE(c.amount_text, '') || ''' is not a number'
    WHEN 'bad_status' THEN 'status ''' || COALESCE(c.raw_status, '') || ''' is not a status word of the profile'
    WHEN 'status_code_conflict' THEN 'status ''' || c.raw_status || ''' contradicts code ''' || c.code || ''''
    WHEN 'duplicate_reference' THEN 'second result for reference ' || c.reference || ' (first on line '
                                    || c.first_line || ')'
    WHEN 'unknown_reference' THEN 'reference ' || c.reference || ' is not a debit we sent'
    WHEN 'amount_mismatch' THEN 'amount ' || c.amount::text || ' differs from ' || c.debit_amount::text || ' sent'
    WHEN 'not_submitted' THEN 'debit ' || c.reference || ' was never sent (still planned)'
    WHEN 'contradicts_final' THEN 'result ' || c.outcome || ' contradicts the final outcome '
                                  || c.debit_status || ' of ' || c.reference
END"""


def import_debit_results(source: str | Path | bytes, *, channel: Channel, name: str | None = None, user=None,
                         dry_run: bool = False, business_date: date | None = None) -> dict:
    """Import a result file for `channel`; returns the summary JSON of contracts.md.

    `dry_run=True` (the admin preview) runs everything and rolls it back. Raises nothing for bad content:
    structure problems give status ``rejected`` with the reason in ``errors``.
    """
    path, sha, name, size = _store(source, name)
    with connection.cursor() as cur:  # one importer per file at a time; released if the process dies
        cur.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [f"result-file:{sha}"])
    try:
        existing = ResultFile.objects.filter(sha256=sha).first()
        if existing is not None and existing.status == ResultFileStatus.PROCESSED:
            return {**existing.summary, "status": "already_imported"}
        if dry_run:
            try:
                with transaction.atomic():
                    summary = _run(path, sha, name, size, channel, user, business_date, existing)
                    raise _Rollback
            except _Rollback:
                pass
            return {**summary, "dry_run": True}
        return _run(path, sha, name, size, channel, user, business_date, existing)
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [f"result-file:{sha}"])


def _empty_summary(status: str) -> dict:
    return {"status": status, "rows": 0, "succeeded": 0, "succeeded_amount": "0.00",
            "failed": dict.fromkeys(FAILED_CATEGORIES, 0), "unknown": 0, "exceptions": 0,
            "unmapped_codes": [], "control_total_ok": False, "errors": []}


def _run(path, sha, name, size, channel, user, business_date, existing) -> dict:
    if existing is None:
        rf = ResultFile.objects.create(sha256=sha, channel=channel, name=name[:255], path=str(path), size=size,
                                       imported_by=user if getattr(user, "is_authenticated", False) else None,
                                       business_date=business_date)
    else:
        rf = existing
        ResultFile.objects.filter(pk=rf.pk).update(status=ResultFileStatus.PROCESSING, channel=channel)
    stage, table = f"stg_rf_{rf.pk}", f"stgc_rf_{rf.pk}"
    try:
        try:
            layout = result_layout(channel)
        except ProfileError as exc:
            raise ResultFileRejected(f"profile of channel {channel.code}: {exc}") from exc
        with transaction.atomic():  # a rejection mid-COPY rolls back to here, not the caller's transaction
            _stage(path, layout, stage)
        summary = _process(rf, channel, layout, stage, table, business_date, user)
    except ResultFileRejected as exc:
        summary = _empty_summary("rejected")
        summary["errors"] = [str(exc)]
        ResultFile.objects.filter(pk=rf.pk).update(status=ResultFileStatus.REJECTED, reject_reason=str(exc),
                                                   summary=summary, finished_at=timezone.now())
        audit.record("result_file.rejected", rf, actor=user, reason=str(exc))
    finally:
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {stage}, {table}")
    return summary


def _process(rf, channel, layout, stage, table, business_date, user) -> dict:
    profile = channel.profile["result_file"]
    statuses = profile.get("status_values", {})
    codes = profile.get("codes", {})
    params = {"sw": list(statuses), "so": list(statuses.values()), "cc": list(codes), "cg": list(codes.values())}
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")  # left behind by a killed run
        with transaction.atomic():
            chunk_settings(cur)  # its hashes of every reference in memory, not in batches on disk
            cur.execute(_classify_sql(layout, stage, table), params)
        cur.execute(f"CREATE INDEX ON {table} (line_no)")
        # the rows of another channel's debits first, then the first of them (not a walk of every row in line
        # order looking for one, the plan the table's missing statistics led to: 0.3 s for 1M rows)
        cur.execute(f"""WITH other AS MATERIALIZED (SELECT line_no, reference, channel_id FROM {table}
                                                      WHERE channel_id <> %s)
                        SELECT o.line_no, o.reference, ch.code FROM other o
                          JOIN servicing_channel ch ON ch.id = o.channel_id
                         ORDER BY o.line_no LIMIT 1""", [channel.pk])
        other = cur.fetchone()
        if other:
            raise ResultFileRejected(f"line {other[0]}: reference {other[1]} is a debit of channel {other[2]}, "
                                     f"not {channel.code}: wrong channel for this file")
        cur.execute(f"ANALYZE {table}")
        # exceptions for bad rows (idempotent per file line), with the line as it came: a plain line was staged as
        # its values only (results._stage), written back here for the few rows that need it, not for every row
        cur.execute(f"""
            INSERT INTO servicing_reconciliationexception (result_file_id, debit_id, loan_id, line_no, raw_text,
                                                           reason_code, reason, status, resolution_note, created_at)
            SELECT %(rf)s, c.debit_id, c.loan_id, c.line_no,
                   COALESCE(s.raw, concat_ws(%(dl)s, {", ".join("s." + f for f in layout.fields)})),
                   c.reason_code, left({REASON_TEXT_SQL}, 300), 'open', '', now()
              FROM {table} c JOIN {stage} s ON s.line_no = c.line_no
             WHERE c.reason_code IS NOT NULL
            ON CONFLICT (result_file_id, line_no) WHERE result_file_id IS NOT NULL DO NOTHING""",
                    {"rf": rf.pk, "dl": layout.delimiter})
        cur.execute(f"SELECT COALESCE(MAX(line_no), 0) FROM {table}")
        (max_line,) = cur.fetchone()

    size = chunk_size()
    starts = list(range(0, max_line + 1, size))
    actor = user.get_username() if getattr(user, "is_authenticated", False) else "system"
    workers = chunk_workers(len(starts), max_line)

    def one_chunk(start: int) -> None:
        # a pghistory context: attribution for the audit events, and the triggers need not look one up per row
        with transaction.atomic(), pghistory.context(source="import_debit_results", result_file=rf.pk):
            _apply_chunk(rf, table, start, min(start + size - 1, max_line), business_date, actor)

    run_chunks(one_chunk, starts, workers, after_each=lambda n: fault("import_chunk", n))

    summary = _summary(table, channel)
    batch_ids = summary.pop("_batch_ids")
    with transaction.atomic():
        from .incidents import detect_incidents

        summary["incidents"] = detect_incidents(batch_ids, result_file=rf)
        DebitBatch.objects.filter(pk__in=batch_ids, status=BatchStatus.EXPORTED).update(
            status=BatchStatus.RESULTS_IMPORTED)
        ResultFile.objects.filter(pk=rf.pk).update(
            status=ResultFileStatus.PROCESSED, summary=summary, finished_at=timezone.now(),
            business_date=business_date or _max_batch_date(batch_ids))
        audit.record("result_file.imported", rf, actor=user, rows=summary["rows"],
                     succeeded=summary["succeeded"], exceptions=summary["exceptions"])
        # borrower receipts: inline for a few, else one django-q2 task for the file, enqueued with this commit
        file_receipts(rf.pk)
    return summary


def chunk_workers(n_chunks: int, max_line: int) -> int:
    """Chunks applied at once, each on its own connection: they touch disjoint loans (one debit in flight per
    loan; a second row for a reference is an exception), so they do not wait on each other; so do the blocks of
    the file's receipts (bulk_notices.queue_file_receipts: disjoint payments). Only for big files outside a
    transaction (not the admin's dry run, whose chunks must roll back together)."""
    wanted = int(os.environ.get("REPAYDESK_IMPORT_WORKERS") or settings.REPAYDESK.get("IMPORT_WORKERS", 2))
    min_rows = int(os.environ.get("REPAYDESK_IMPORT_PARALLEL_MIN_ROWS")
                   or settings.REPAYDESK.get("IMPORT_PARALLEL_MIN_ROWS", 50000))
    if wanted <= 1 or n_chunks < 2 or max_line < min_rows or connection.in_atomic_block:
        return 1
    return min(wanted, n_chunks)


def _max_batch_date(batch_ids):
    from django.db.models import Max

    return DebitBatch.objects.filter(pk__in=batch_ids).aggregate(d=Max("business_date"))["d"]


def _apply_chunk(rf: ResultFile, table: str, lo: int, hi: int, business_date: date | None, actor: str) -> None:
    with connection.cursor() as cur:
        define_trigger_settings(cur)
        chunk_settings(cur)
        # The ANALYZEs below are of this chunk's temp tables (20,000 rows at most), for row counts and distinct
        # values: a sample of 3,000 rows tells those as well as the default's 30,000 (every row), for less (1M
        # rows: 1.6 s → 0.6 s of statement time). Nothing else is analyzed in this transaction.
        cur.execute("SET LOCAL default_statistics_target = 10")
        # each debit's answer as the file gave it, with the debit: the debit's update below reads nothing else
        cur.execute("CREATE TEMP TABLE _applied (debit_id bigint, loan_id bigint, amount numeric, value_date date, "
                    "reference text, outcome text, category text, line_no int, failed_on date, was_unknown boolean, "
                    "code text, message text, raw_status text, settled_on date, channel_txn_id text) ON COMMIT DROP")
        # the loans that get a payment, locked first (in id order, as post_payment locks a loan before its
        # debits): a payment racing the import waits for the chunk instead of interleaving with the set-based
        # allocation (which reads the instalments before it updates them)
        cur.execute(f"""
            SELECT l.id FROM servicing_loan l
             WHERE l.id = ANY(ARRAY(SELECT c.loan_id FROM {table} c
                                     WHERE c.line_no BETWEEN %(lo)s AND %(hi)s AND c.reason_code IS NULL
                                       AND c.outcome = 'succeeded'))
             ORDER BY l.id FOR UPDATE OF l""", {"lo": lo, "hi": hi})
        # the debits to apply, locked; they are updated once, after the set-based posting, with their outcome
        # AND their payment (one non-HOT UPDATE instead of two). Each staged row looks its debit up by
        # primary key (LATERAL): a join would depend on the debits' statistics, which still say "planned" right
        # after an export if autovacuum has not analyzed them since; estimated at one row, "submitted" made
        # the planner scan every debit per staged row (a 1M-row file stalled in its first chunk).
        cur.execute(f"""
            INSERT INTO _applied
            SELECT d.id, d.loan_id, d.amount, COALESCE(c.settled_on, c.batch_date) AS value_date,
                   d.reference, c.outcome, c.category, c.line_no, c.batch_date, d.status = 'unknown',
                   c.code, c.message, c.raw_status, c.settled_on, c.channel_txn_id
              FROM {table} c
             CROSS JOIN LATERAL (SELECT x.id, x.loan_id, x.amount, x.reference, x.status FROM servicing_debit x
                                  WHERE x.id = c.debit_id AND x.status IN ('submitted', 'unknown')
                                    FOR UPDATE) d
             WHERE c.line_no BETWEEN %(lo)s AND %(hi)s AND c.reason_code IS NULL""", {"lo": lo, "hi": hi})
        # a temp table has no statistics until analyzed: estimated at a few hundred rows, the joins below would
        # scan every debit and staged row per chunk (or loop over the retry states once per payment). Only the
        # columns joined or filtered on: the statistics of the others cost as much and guide nothing
        cur.execute("ANALYZE _applied (debit_id, loan_id, line_no, outcome)")
        # the failures' actions first (retry states, mandates, borrower notices), so that each debit's answer is
        # written once with the action taken (temp table _failure_action)
        cur.execute("CREATE TEMP TABLE _failed ON COMMIT DROP AS SELECT debit_id, category, "
                    "COALESCE(%s, failed_on) AS failed_on FROM _applied WHERE outcome = 'failed'", [business_date])
        apply_failed_debits("_failed")
        # an unknown debit's answer is replaced by this one: kept first, unless it is this very line (a re-run of
        # this file after a crash)
        keep_earlier_answers(cur, """d.id = ANY(ARRAY(
            SELECT a.debit_id FROM _applied a JOIN servicing_debit x ON x.id = a.debit_id
             WHERE a.was_unknown AND (x.result_file_id, x.result_line) IS DISTINCT FROM (%(rf)s, a.line_no)))""",
                             {"rf": rf.pk})
        cur.execute("CREATE TEMP TABLE _succ ON COMMIT DROP AS SELECT debit_id, loan_id, amount, value_date, reference "
                    "FROM _applied WHERE outcome = 'succeeded'")
        cur.execute("ANALYZE _succ (debit_id, loan_id, reference)")
        cur.execute("""UPDATE servicing_retrystate r SET status = 'stopped', next_retry_on = NULL, updated_at = now()
                        WHERE r.loan_id IN (SELECT s.loan_id FROM _succ s) AND r.status IN ('in_flight', 'scheduled')""")
    def update_debits(cur) -> None:
        # outcome + the set-based payment (temp table _pmt of posting.py) in one statement; before the
        # per-loan path, which reads the debit's settled_on
        cur.execute("""
            UPDATE servicing_debit d
               SET status = a.outcome, category = a.category, result_code = left(a.code, 20),
                   result_message = left(a.message, 200), result_status = left(COALESCE(a.raw_status, ''), 40),
                   result_action = CASE a.outcome WHEN 'succeeded' THEN 'posted as paid'
                                                  WHEN 'unknown' THEN 'await result'
                                                  ELSE COALESCE(fa.action_text, 'per policy')
                                   END,
                   result_on = COALESCE(%(bd)s, a.failed_on), result_file_id = %(rf)s, result_line = a.line_no,
                   settled_on = a.settled_on, channel_txn_id = left(a.channel_txn_id, 64),
                   payment_id = COALESCE(pm.id, d.payment_id), updated_at = now()
              FROM _applied a
              LEFT JOIN _pmt pm ON pm.debit_id = a.debit_id
              LEFT JOIN _failure_action fa ON fa.debit_id = a.debit_id  -- by its index (failures.py)
             WHERE d.id = a.debit_id AND d.id = ANY(ARRAY(SELECT debit_id FROM _applied))  -- by key, not a scan""",
                    {"rf": rf.pk, "bd": business_date})

    post_succeeded_debits("_succ", before_slow=update_debits, audit_on=("servicing.resultfile", rf.pk),
                          audit_data={"lines": f"{max(lo, 1)}-{hi}"}, actor=actor)
    # the receipts of the payments are a follow-up step of the file (bulk_notices.file_receipts), not here
    with connection.cursor() as cur:
        cur.execute("DROP TABLE _applied, _succ, _failed")


def _summary(table: str, channel: Channel) -> dict:
    summary = _empty_summary("processed")
    codes = channel.profile["result_file"].get("codes", {})
    with connection.cursor() as cur:
        # the counts in one pass over the file's rows: per outcome and category of the good rows (with the code of
        # an unclassified failure), and the exceptions
        cur.execute(f"""SELECT reason_code IS NULL, outcome, category,
                               CASE WHEN outcome = 'failed' AND category = 'unclassified' THEN code END,
                               COUNT(*), COALESCE(SUM(amount), 0)
                          FROM {table} GROUP BY 1, 2, 3, 4""")
        rows = succ = unknown = exc = 0
        succ_amt, unmapped = Decimal(0), set()
        for good, outcome, category, code, n, amount in cur.fetchall():
            rows += n
            if not good:
                exc += n
            elif outcome == "succeeded":
                succ, succ_amt = succ + n, succ_amt + amount
            elif outcome == "unknown":
                unknown += n
            elif outcome == "failed":
                summary["failed"][category] = summary["failed"].get(category, 0) + n
                if code is not None and code not in codes:
                    unmapped.add(code)
        summary["unmapped_codes"] = sorted(unmapped)
        errors = []
        if exc:  # (without one, this walked the whole file in line order)
            cur.execute(f"""SELECT c.line_no, {REASON_TEXT_SQL} FROM {table} c WHERE c.reason_code IS NOT NULL
                             ORDER BY c.line_no LIMIT %s""", [MAX_ERRORS_LISTED])
            errors = [f"line {n}: {reason}" for n, reason in cur.fetchall()]
        if exc > MAX_ERRORS_LISTED:
            errors.append(f"… and {exc - MAX_ERRORS_LISTED} more (see reconciliation exceptions)")
        cur.execute(f"""SELECT b.id, b.control_count, b.control_amount, COUNT(c.line_no),
                               COALESCE(SUM(c.amount), 0)
                          FROM {table} c JOIN servicing_debitbatch b ON b.id = c.batch_id
                         WHERE c.occurrence = 1 GROUP BY b.id, b.control_count, b.control_amount""")
        batches = cur.fetchall()
    summary.update(rows=rows, succeeded=succ, succeeded_amount=f"{Decimal(succ_amt):.2f}", unknown=unknown,
                   exceptions=exc, errors=errors)
    summary["control_total_ok"] = bool(batches) and all(
        n == count and Decimal(s) == Decimal(amount) for _, count, amount, n, s in batches)
    summary["_batch_ids"] = [b[0] for b in batches]
    return summary


def summary_text(summary: dict) -> str:
    failed = ", ".join(f"{k} {v}" for k, v in summary.get("failed", {}).items() if v) or "none"
    out = io.StringIO()
    out.write(f"{summary['status']}: {summary['rows']} rows; succeeded {summary['succeeded']} "
              f"({summary['succeeded_amount']}); failed {failed}; unknown {summary['unknown']}; "
              f"exceptions {summary['exceptions']}; control total {'ok' if summary['control_total_ok'] else 'NOT ok'}")
    if summary.get("unmapped_codes"):
        out.write(f"\nunmapped codes: {', '.join(summary['unmapped_codes'])}")
    for err in summary.get("errors", [])[:20]:
        out.write(f"\n  {err}")
    return out.getvalue()
