"""China's business calendar: seeding the ``BusinessCalendarDay`` table and answering working-day questions.

Design (``domain.md``, "Due dates and the calendar"; ``stack.md``, "business calendar"):

* Years ``chinesecalendar`` knows (2004-2026 in 1.11) are official: working days, holidays and make-up
  working Saturdays/Sundays (调休) come from it (source ``chinesecalendar``, not provisional). Each of
  those days is cross-checked with ``holidays`` ``CN`` (which lists official make-up working days in
  ``weekend_workdays``); disagreements are reported, the table keeps chinesecalendar's answer.
* Later (or earlier) years: weekends + statutory days from ``holidays`` ``CN`` (source ``holidays``,
  provisional) - the make-up working days of a year are unknown until the State Council publishes them
  (every November) and ops enter them in the admin or a newer library is installed.
* Rows whose source is ``manual`` (ops edits) are never overwritten by a re-seed.

Lookups go through a per-process cache of the whole table (a few thousand rows). The cache is refreshed
after :data:`CACHE_TTL_SECONDS` so an ops edit made in another process is picked up; tests and the admin
call :func:`calendar_cache_clear`. A date without a row is answered weekends-only with a logged warning
(the system does not guess silently, and does not crash either).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from servicing.models import BusinessCalendarDay

__all__ = [
    "FIRST_YEAR",
    "CalendarError",
    "add_working_days",
    "calendar_cache_clear",
    "is_working_day",
    "next_working_day",
    "previous_working_day",
    "provisional_years",
    "seed_calendar",
    "working_days_between",
]

logger = logging.getLogger(__name__)

#: First year seeded by default: chinesecalendar's first year.
FIRST_YEAR = 2004
#: How many years after "today" the default seed covers.
YEARS_AHEAD = 2
#: How long a process trusts its cached copy of the table.
CACHE_TTL_SECONDS = 300
#: How far next/previous working day may walk before concluding the calendar is broken.
MAX_WALK_DAYS = 366
NAME_MAX_LENGTH = BusinessCalendarDay._meta.get_field("name").max_length

Source = BusinessCalendarDay.Source


class CalendarError(ValueError):
    """The calendar cannot answer (e.g. no working day within a year: a broken table)."""


# --------------------------------------------------------------------------------------------------
# Seeding
# --------------------------------------------------------------------------------------------------

def _year_days(year: int) -> list[date]:
    first = date(year, 1, 1)
    return [first + timedelta(days=i) for i in range((date(year + 1, 1, 1) - first).days)]


def _chinesecalendar_knows(year: int) -> bool:
    import chinese_calendar

    try:
        chinese_calendar.is_workday(date(year, 1, 1))
        chinese_calendar.is_workday(date(year, 12, 31))
    except NotImplementedError:
        return False
    return True


def _chinese_holiday_name(english: str | None) -> str:
    """chinesecalendar names days in English ('Spring Festival'); the UI is Chinese ('春节')."""
    if not english:
        return ""
    from chinese_calendar.constants import Holiday

    try:
        return Holiday(english).chinese
    except ValueError:
        return english


def _rows_from_chinesecalendar(year: int, cn_holidays, mismatches: list[dict]) -> list[tuple]:
    import chinese_calendar

    rows = []
    for d in _year_days(year):
        working = chinese_calendar.is_workday(d)
        _on_holiday, english = chinese_calendar.get_holiday_detail(d)
        name = _chinese_holiday_name(english)
        if working and name:  # a make-up working day (调休上班) of a holiday
            name = f"{name}调休上班"
        other = cn_holidays.is_working_day(d)
        if other != working:
            mismatches.append({
                "date": d.isoformat(),
                "chinesecalendar": working,
                "holidays": other,
                "holidays_name": cn_holidays.get(d) or "",
            })
        rows.append((d, working, name[:NAME_MAX_LENGTH], Source.CHINESECALENDAR.value, False))
    return rows


def _rows_from_holidays(year: int, cn_holidays) -> list[tuple]:
    rows = []
    for d in _year_days(year):
        working = cn_holidays.is_working_day(d)
        name = cn_holidays.get(d) or ""
        if working and d.weekday() >= 5:
            name = name or "调休上班"
        rows.append((d, working, name[:NAME_MAX_LENGTH], Source.HOLIDAYS.value, True))
    return rows


def _rows_weekends_only(year: int) -> list[tuple]:
    return [(d, d.weekday() < 5, "", Source.WEEKENDS.value, True) for d in _year_days(year)]


_UPSERT_SQL = """
INSERT INTO {table} AS t (date, is_working_day, name, source, provisional)
SELECT * FROM unnest(%s::date[], %s::boolean[], %s::text[], %s::text[], %s::boolean[])
ON CONFLICT (date) DO {on_conflict}
RETURNING (xmax = 0) AS inserted
"""
_ON_CONFLICT_REFRESH = """UPDATE SET is_working_day = EXCLUDED.is_working_day, name = EXCLUDED.name,
    source = EXCLUDED.source, provisional = EXCLUDED.provisional
  WHERE t.source <> 'manual'
    AND (t.is_working_day, t.name, t.source, t.provisional)
        IS DISTINCT FROM (EXCLUDED.is_working_day, EXCLUDED.name, EXCLUDED.source, EXCLUDED.provisional)"""


def _default_years(today: date | None) -> range:
    today = today or timezone.localdate()
    return range(FIRST_YEAR, today.year + YEARS_AHEAD + 1)


def seed_calendar(years: Iterable[int] | None = None, *, today: date | None = None,
                  refresh: bool = True, using: str = DEFAULT_DB_ALIAS) -> dict:
    """Fill ``BusinessCalendarDay`` for ``years`` in one set-based statement.

    ``years`` defaults to ``FIRST_YEAR`` .. ``today.year + 2`` (``today`` defaults to the local date:
    the only use of the wall clock here). Manual rows (ops edits) always win. Generated rows that
    already exist are refreshed when the libraries now say something else (``refresh=True``: e.g. a
    provisional year becomes official after upgrading chinesecalendar); ``refresh=False`` is a plain
    ``ON CONFLICT DO NOTHING``. From a data migration pass ``using=schema_editor.connection.alias``.

    Returns a report: years by source, provisional years, row counts and the days where
    chinesecalendar and holidays disagree (``mismatches``; the table keeps chinesecalendar's answer).
    """
    import holidays

    years = sorted(set(_default_years(today) if years is None else years))
    if not years:
        return {"years": [], "rows": 0, "inserted": 0, "updated": 0, "unchanged": 0, "manual_kept": 0,
                "by_source": {}, "provisional_years": [], "mismatches": []}
    # One holidays object for all years (plus neighbours: a notice may move a working day across
    # the New Year, e.g. 2005-12-31 for the 2006 holiday).
    cn = holidays.country_holidays("CN", years=range(years[0] - 1, years[-1] + 2), language="zh_CN")
    cn_start = getattr(cn, "start_year", 1950)

    rows: list[tuple] = []
    mismatches: list[dict] = []
    by_source: dict[str, list[int]] = {}
    for year in years:
        if _chinesecalendar_knows(year):
            source, year_rows = Source.CHINESECALENDAR, _rows_from_chinesecalendar(year, cn, mismatches)
        elif year >= cn_start:
            source, year_rows = Source.HOLIDAYS, _rows_from_holidays(year, cn)
        else:
            source, year_rows = Source.WEEKENDS, _rows_weekends_only(year)
        by_source.setdefault(source.value, []).append(year)
        rows.extend(year_rows)

    connection = connections[using]
    table = connection.ops.quote_name(BusinessCalendarDay._meta.db_table)
    sql = _UPSERT_SQL.format(table=table, on_conflict=_ON_CONFLICT_REFRESH if refresh else "NOTHING")
    columns = [list(c) for c in zip(*rows, strict=True)]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(sql, columns)
        returned = [r[0] for r in cursor.fetchall()]
        manual_kept = BusinessCalendarDay.objects.using(using).filter(
            source=Source.MANUAL, date__year__in=years).count()
        transaction.on_commit(calendar_cache_clear, using=using)
    calendar_cache_clear()
    inserted = sum(1 for r in returned if r)
    updated = len(returned) - inserted
    report = {
        "years": years,
        "rows": len(rows),
        "inserted": inserted,
        "updated": updated,
        "unchanged": len(rows) - inserted - updated,
        "manual_kept": manual_kept,
        "by_source": by_source,
        "provisional_years": sorted(y for s, ys in by_source.items() if s != Source.CHINESECALENDAR for y in ys),
        "mismatches": mismatches,
    }
    if mismatches:
        logger.warning("business calendar: chinesecalendar and holidays disagree on %d day(s): %s",
                       len(mismatches), ", ".join(m["date"] for m in mismatches[:20]))
    return report


def provisional_years() -> list[int]:
    """Years with at least one provisional day (official arrangement not loaded): the admin warns."""
    return sorted({d.year for d in BusinessCalendarDay.objects.filter(provisional=True).dates("date", "year")})


# --------------------------------------------------------------------------------------------------
# Lookups
# --------------------------------------------------------------------------------------------------

_lock = threading.Lock()
_cache: dict[date, bool] | None = None
_cache_loaded_at = 0.0
_warned_years: set[int] = set()


def calendar_cache_clear() -> None:
    """Forget this process's copy of the table (after seeding, an admin edit, or in tests)."""
    global _cache
    with _lock:
        _cache = None
        _warned_years.clear()


def _table() -> dict[date, bool]:
    global _cache, _cache_loaded_at
    cache = _cache
    if cache is not None and time.monotonic() - _cache_loaded_at < CACHE_TTL_SECONDS:
        return cache
    with _lock:
        if _cache is None or time.monotonic() - _cache_loaded_at >= CACHE_TTL_SECONDS:
            _cache = dict(BusinessCalendarDay.objects.values_list("date", "is_working_day"))
            _cache_loaded_at = time.monotonic()
        return _cache


def _check_date(d: date) -> date:
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"a calendar date is a datetime.date, not {type(d).__name__}")
    return d


def is_working_day(d: date) -> bool:
    """True on a working day in mainland China (make-up working weekends included)."""
    _check_date(d)
    working = _table().get(d)
    if working is not None:
        return working
    if d.year not in _warned_years:
        _warned_years.add(d.year)
        logger.warning("business calendar has no row for %s (year %d not seeded): weekends-only fallback; "
                       "run seed_calendar([%d])", d, d.year, d.year)
    return d.weekday() < 5


def _walk(d: date, step: int) -> date:
    current = d
    for _ in range(MAX_WALK_DAYS):
        current += timedelta(days=step)
        if is_working_day(current):
            return current
    raise CalendarError(f"no working day within {MAX_WALK_DAYS} days of {d}: check the business calendar")


def next_working_day(d: date, *, include_self: bool = False) -> date:
    """The first working day after ``d`` (or ``d`` itself when ``include_self`` and it is one)."""
    _check_date(d)
    if include_self and is_working_day(d):
        return d
    return _walk(d, 1)


def previous_working_day(d: date, *, include_self: bool = False) -> date:
    """The last working day before ``d`` (or ``d`` itself when ``include_self`` and it is one)."""
    _check_date(d)
    if include_self and is_working_day(d):
        return d
    return _walk(d, -1)


def add_working_days(d: date, n: int) -> date:
    """The ``n``-th working day after ``d`` (before it when ``n`` < 0); ``d`` itself is not counted.

    ``add_working_days(d, 0)`` is ``d``. Consistent with :func:`working_days_between`:
    ``working_days_between(d, add_working_days(d, n)) == n``.
    """
    _check_date(d)
    step = 1 if n >= 0 else -1
    current = d
    for _ in range(abs(n)):
        current = _walk(current, step)
    return current


def working_days_between(start: date, end: date) -> int:
    """Working days in the half-open interval (start, end]: after ``start``, up to and including ``end``.

    Negative when ``end`` is before ``start``; 0 when they are equal.
    """
    _check_date(start)
    _check_date(end)
    if end < start:
        return -working_days_between(end, start)
    return sum(1 for i in range(1, (end - start).days + 1) if is_working_day(start + timedelta(days=i)))
