"""Shared helpers for the benchmarks under bench/ (see bench/README.md).

- ``setup_django()``: Django on the database named by ``DATABASE_URL`` (required: a benchmark never runs
  against the embedded default database), creating and migrating that database when it does not exist.
- ``measure()``: wall time, peak Python heap (tracemalloc, optional) and the process's peak RSS.
- ``copy_rows()`` / ``raw_cursor()``: PostgreSQL COPY through psycopg 3 (``cursor.copy()``).
- ``bulk_load()``: the usual bulk-load session settings (triggers off via ``session_replication_role``,
  secondary indexes dropped during the load and rebuilt after), restored on exit.
- ``ResultTable`` and ``verdict()``: the printed figures performance.md asks for (rows, seconds, rows/s,
  peak memory, the baseline's figures and the ratio) and PASS/FAIL lines against the targets.

Benchmarks TRUNCATE tables, so ``guard_database()`` refuses a database whose name does not start with
``bench`` unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import os
import platform
import resource
import sys
import time
import tracemalloc
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------------------------- Django / DB


def database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        sys.exit("bench: set DATABASE_URL to a PostgreSQL database of your own, e.g.\n"
                 "  export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_bd\n"
                 "(benchmarks never use the embedded default database)")
    return url


def database_name(url: str | None = None) -> str:
    return urlparse(url or database_url()).path.lstrip("/")


def guard_database(force: bool = False) -> str:
    """The benchmark's database name; refuse to truncate a database that does not look like a bench one."""
    name = database_name()
    if not name.startswith("bench") and not force:
        sys.exit(f"bench: refusing to truncate tables in database '{name}' (name does not start with 'bench'); "
                 "use a dedicated database or pass --force")
    return name


def ensure_database_exists() -> bool:
    """Create the database named in DATABASE_URL if it does not exist. Returns True when it was created."""
    import psycopg

    url = urlparse(database_url())
    name = url.path.lstrip("/")
    admin = url._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            return False
        conn.execute(f'CREATE DATABASE "{name}"')
        return True


def cohort_parser(doc: str, *, loans: int, naive_sample: int) -> argparse.ArgumentParser:
    """The options of the benchmarks on a generated cohort of due loans (bench/debit_batch.py `generate`):
    --loans, --date (their due date), --naive-sample (loans the per-loan baseline runs on), --force."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--loans", type=int, default=loans)
    ap.add_argument("--date", type=_dt.date.fromisoformat, default=_dt.date(2026, 12, 1))
    ap.add_argument("--naive-sample", type=int, default=naive_sample)
    ap.add_argument("--force", action="store_true")
    return ap


def setup_django(*, create_db: bool = True, migrate: bool = True) -> None:
    """Django configured on DATABASE_URL; the database created and migrated if asked."""
    database_url()
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if create_db and ensure_database_exists():
        print(f"bench: created database {database_name()}")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


def raw_connection():
    """The psycopg 3 connection behind Django's default connection."""
    from django.db import connection

    connection.ensure_connection()
    return connection.connection


@contextlib.contextmanager
def raw_cursor() -> Iterator:
    with raw_connection().cursor() as cur:
        yield cur


def copy_rows(cur, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """COPY rows (tuples of Python values; None = NULL) into table(columns). Returns the number of rows."""
    n = 0
    cols = ", ".join(columns)
    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)
            n += 1
    return n


def truncate(cur, tables: Sequence[str]) -> None:
    """Empty tables (and whatever references them) and restart their id sequences."""
    cur.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


def secondary_indexes(cur, tables: Sequence[str]) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the indexes of `tables` that do not back a constraint."""
    cur.execute("""
        SELECT i.indexname, i.indexdef FROM pg_indexes i
         WHERE i.schemaname = current_schema() AND i.tablename = ANY(%s)
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
         ORDER BY i.tablename, i.indexname""", [list(tables)])
    return [(name, ddl) for name, ddl in cur.fetchall()]


@contextlib.contextmanager
def bulk_load(cur, tables: Sequence[str], *, drop_indexes: bool = True, maintenance_work_mem: str = "1GB"):
    """Bulk load inside the caller's transaction (required: DROP INDEX and SET LOCAL are undone with it on
    failure). Triggers (pghistory, append-only, the deferred balance check, FK checks) are skipped with
    session_replication_role = replica; secondary indexes are dropped and rebuilt at the end.

    Only for loading consistent, generated data into empty tables; check it afterwards (verify_books).
    """
    indexes = secondary_indexes(cur, tables) if drop_indexes else []
    cur.execute("SET LOCAL session_replication_role = replica")
    cur.execute(f"SET LOCAL maintenance_work_mem = '{maintenance_work_mem}'")
    for name, _ in indexes:
        cur.execute(f'DROP INDEX "{name}"')
    yield  # on an exception the caller's transaction rolls back: the indexes and settings come back with it
    for _, ddl in indexes:
        cur.execute(ddl)
    cur.execute("SET LOCAL session_replication_role = origin")


# --------------------------------------------------------------------------------------------- measuring


def rss_peak_bytes() -> int:
    """The process's peak resident set size so far (ru_maxrss is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


@dataclass
class Measurement:
    label: str
    seconds: float = 0.0
    py_peak_bytes: int | None = None  # tracemalloc peak of the Python heap during the block
    rss_peak_bytes: int = 0  # process peak RSS at the end of the block (monotonic over the process)
    extra: dict = field(default_factory=dict)

    @property
    def peak_memory(self) -> str:
        parts = []
        if self.py_peak_bytes is not None:
            parts.append(f"heap {fmt_bytes(self.py_peak_bytes)}")
        parts.append(f"rss {fmt_bytes(self.rss_peak_bytes)}")
        return ", ".join(parts)


@contextlib.contextmanager
def measure(label: str, *, trace_memory: bool = False, quiet: bool = False) -> Iterator[Measurement]:
    """Time a block; with trace_memory, also the peak of the Python heap (tracemalloc slows Python code,
    so use it on SQL-bound blocks only, not on the baseline loops you compare against)."""
    m = Measurement(label)
    if trace_memory:
        tracemalloc.start()
        tracemalloc.reset_peak()
    t0 = time.perf_counter()
    try:
        yield m
    finally:
        m.seconds = time.perf_counter() - t0
        if trace_memory:
            m.py_peak_bytes = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        m.rss_peak_bytes = rss_peak_bytes()
        if not quiet:
            print(f"  {label}: {m.seconds:,.2f} s", flush=True)


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def fmt_seconds(s: float) -> str:
    if s >= 120:
        return f"{s:,.1f} s ({s / 60:,.1f} min)"
    return f"{s:,.3f} s" if s < 10 else f"{s:,.1f} s"


def machine_info() -> dict:
    """What the figures were measured on: date, cores, RAM, Python, PostgreSQL."""
    info = {
        "date": _dt.date.today().isoformat(),
        "cores": os.cpu_count(),
        "ram": fmt_bytes(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")),
        "python": platform.python_version(),
    }
    try:
        with raw_cursor() as cur:
            cur.execute("SHOW server_version")
            info["postgresql"] = cur.fetchone()[0]
            cur.execute("SHOW shared_buffers")
            info["shared_buffers"] = cur.fetchone()[0]
            cur.execute("SHOW work_mem")
            info["work_mem"] = cur.fetchone()[0]
    except Exception:  # pragma: no cover - info only
        pass
    return info


# --------------------------------------------------------------------------------------------- reporting


@dataclass
class Row:
    what: str
    rows: int
    seconds: float
    memory: str = "-"
    baseline_seconds: float | None = None  # the baseline's time for the same rows (measured or extrapolated)
    note: str = ""

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")

    @property
    def ratio(self) -> float | None:
        if self.baseline_seconds is None or not self.seconds:
            return None
        return self.baseline_seconds / self.seconds


class ResultTable:
    """rows, seconds, rows/s, ms per row, peak memory, the baseline's time and the ratio (baseline / this)."""

    HEAD = ("what", "rows", "seconds", "rows/s", "ms/row", "peak memory", "baseline s", "ratio")

    def __init__(self, title: str):
        self.title = title
        self.rows: list[Row] = []

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def render(self) -> str:
        body = []
        for r in self.rows:
            body.append((
                r.what + (f" ({r.note})" if r.note else ""),
                f"{r.rows:,}",
                f"{r.seconds:,.2f}",
                f"{r.rate:,.0f}",
                f"{1000 * r.seconds / r.rows:,.3f}" if r.rows else "-",
                r.memory,
                "-" if r.baseline_seconds is None else f"{r.baseline_seconds:,.1f}",
                "-" if r.ratio is None else f"{r.ratio:,.1f}x",
            ))
        widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(self.HEAD)]
        line = "  ".join("-" * w for w in widths)
        out = [self.title, line, "  ".join(h.ljust(w) for h, w in zip(self.HEAD, widths, strict=True)), line]
        for b in body:
            out.append("  ".join(c.ljust(w) if i in (0, 5) else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(b, widths, strict=True))))
        out.append(line)
        return "\n".join(out)

    def markdown(self) -> str:
        out = ["| " + " | ".join(self.HEAD) + " |", "|" + "---|" * len(self.HEAD)]
        for r in self.rows:
            out.append("| " + " | ".join((
                r.what + (f" ({r.note})" if r.note else ""), f"{r.rows:,}", f"{r.seconds:,.2f}", f"{r.rate:,.0f}",
                f"{1000 * r.seconds / r.rows:,.3f}" if r.rows else "-", r.memory,
                "-" if r.baseline_seconds is None else f"{r.baseline_seconds:,.1f}",
                "-" if r.ratio is None else f"{r.ratio:,.1f}x")) + " |")
        return "\n".join(out)


def verdict(ok: bool, text: str) -> str:
    line = f"{'PASS' if ok else 'FAIL'}  {text}"
    print(line)
    return line
