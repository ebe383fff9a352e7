"""Raw SQL for the set-based paths (business day, collections cycle, dashboards): one way to run it."""

from __future__ import annotations

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


def define_trigger_settings(cur) -> None:
    """Define pgtrigger's ignore list (ignoring nothing) for this transaction: its audit triggers otherwise
    raise and catch an exception per row to find the setting unset, a subtransaction per row that scans the
    deferred-trigger queue each time (quadratic in a big statement)."""
    cur.execute("SELECT set_config('pgtrigger.ignore', '{}', true)")
