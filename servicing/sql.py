"""Raw SQL for the set-based paths (business day, collections cycle, dashboards): one way to run it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from django.db import connection


def execute(sql: str, params: dict | list | None = None) -> int:
    """Run one statement; return the number of rows it touched."""
    with connection.cursor() as cur:
        cur.execute(sql, params if params is not None else {})
        return cur.rowcount


def fetch_all(sql: str, params: dict | list | None = None) -> list[tuple]:
    with connection.cursor() as cur:
        cur.execute(sql, params if params is not None else {})
        return cur.fetchall()


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Insert many rows with one COPY (a JSON column takes its text): a bulk_create of 10k rows spends seconds
    in Python quoting its parameters, a COPY a tenth of that."""
    connection.ensure_connection()
    with connection.connection.cursor() as pcur, \
            pcur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def stage(sql: str, params: dict, table: str) -> int:
    """Stage a set-based step's rows in a temp table (dropped at commit), analyzed, with their idempotency key
    as a real column.

    Joining on a computed key inside one CTE chain made the planner nest-loop on bad estimates, and
    updating instalments in the same statement as journal inserts made pghistory's per-row
    subtransactions scan the deferred-trigger queue (quadratic). So: stage, ANALYZE, update, then insert.
    """
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"CREATE TEMP TABLE {table} ON COMMIT DROP AS {sql}", params)
        n = cur.rowcount
        cur.execute(f"ANALYZE {table}")
    return n


def lock_loans(where: str, params: dict) -> int:
    """Take the row locks of the loans a step will post for, in id order, before reading their figures.

    Payments lock their loan first too, so a payment racing a set-based step waits or is waited for —
    never a deadlock, never a figure computed from a stale read.
    """
    with connection.cursor() as cur:
        cur.execute(f"SELECT l.id FROM servicing_loan l WHERE l.id IN ({where}) ORDER BY l.id FOR UPDATE", params)
        return cur.rowcount


def chunk_settings(cur) -> None:
    """For a transaction that works on one chunk of a big set-based job (tens of thousands to a million rows):
    its hash aggregates and sorts stay in memory instead of spilling to disk (default work_mem is 4 MB). JIT
    is off for every connection already (config/settings.py)."""
    cur.execute("SET LOCAL work_mem = '64MB'")


def read_by_index(cur) -> None:
    """For a transaction whose statements must read the book's big tables by index whatever the statistics say:
    where the planner's estimate is known to mislead it into reading a whole table (a table vacuumed empty
    while it is being filled; predicates it takes as unrelated, such as "still open" and "due by the date").
    Small tables without a usable index are still read whole."""
    cur.execute("SET LOCAL enable_seqscan = off")


@contextmanager
def planner_setting(cur, name: str, value: str) -> Iterator[None]:
    """One planner setting for the statements run inside, restored after (within the transaction): for a
    statement whose plan the statistics are known to mislead, without changing the plans of the rest."""
    cur.execute("SELECT current_setting(%s)", [name])
    before = cur.fetchone()[0]
    cur.execute("SELECT set_config(%s, %s, true)", [name, value])
    try:
        yield
    finally:
        cur.execute("SELECT set_config(%s, %s, true)", [name, before])


ANALYZE_MIN_ROWS = 100


def refresh_stats(table: str, columns: str, changed: int) -> None:
    """ANALYZE the columns a set-based step just moved, when it moved enough rows to matter.

    A step that turns thousands of rows (instalments overdue, loans' DPD, cases opened) stays far below the
    10 % autoanalyze threshold of a big table, or runs before autovacuum's next round (days run back to back
    in a catch-up), so the planner keeps believing "almost nothing is overdue" (rows=1) and nests loops over
    what are really thousands of rows on each side (35 s and 144 s at 100k loans, before). A column ANALYZE
    samples a fixed 30k rows (≈0.2 s at 1.2M rows), runs inside the step's transaction (it sees the step's own
    updates) and is skipped when nothing changed, so a re-run pays nothing. Without table ownership PostgreSQL
    only warns and skips it.
    """
    if changed >= ANALYZE_MIN_ROWS:
        with connection.cursor() as cur:
            cur.execute(f"ANALYZE {table} ({columns})")


def define_trigger_settings(cur) -> None:
    """Define pgtrigger's ignore list (ignoring nothing) for this transaction: its audit triggers otherwise
    raise and catch an exception per row to find the setting unset, a subtransaction per row that scans the
    deferred-trigger queue each time (quadratic in a big statement)."""
    cur.execute("SELECT set_config('pgtrigger.ignore', '{}', true)")


def run_chunks(work, chunks: list, workers: int, *, after_each=None) -> None:
    """Run `work(chunk)` for every chunk on `workers` threads, each thread on one connection of its own for all
    the chunks it takes (closed when they run out: a connection per chunk was a new server process planning
    every statement from cold caches, 3 % of a 1M-row import). Each chunk is the caller's own transaction.
    With one worker (or one chunk), in order on the caller's connection, in its transaction if it has one.

    `after_each(n)` runs after the n-th chunk done (a fault point for the crash tests). The first failure stops
    the chunks not yet started and is raised once the running ones finished; a re-run finds the committed
    chunks done (each chunk's work is idempotent)."""
    import queue
    import threading

    if workers <= 1 or len(chunks) <= 1:
        for n, chunk in enumerate(chunks, start=1):
            work(chunk)
            if after_each is not None:
                after_each(n)
        return
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for chunk in chunks:
        todo.put(chunk)
    lock = threading.Lock()
    state: dict = {"done": 0, "failed": None}

    def worker() -> None:
        try:
            while state["failed"] is None:
                try:
                    chunk = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    work(chunk)
                except BaseException as exc:
                    with lock:
                        state["failed"] = state["failed"] or exc  # the first one is raised
                    return
                with lock:
                    state["done"] += 1
                    n = state["done"]
                if after_each is not None:
                    after_each(n)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, name=f"chunk-worker-{i}") for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if state["failed"] is not None:
        raise state["failed"]
