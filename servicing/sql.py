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
