"""Business calendar: seeding from chinesecalendar / holidays, manual edits, working-day arithmetic."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest

from servicing.models import BusinessCalendarDay
from servicing.services import calendar as cal
from servicing.services.calendar import (
    add_working_days,
    calendar_cache_clear,
    is_working_day,
    next_working_day,
    previous_working_day,
    provisional_years,
    seed_calendar,
    working_days_between,
)

pytestmark = pytest.mark.django_db

Source = BusinessCalendarDay.Source


@pytest.fixture(autouse=True)
def _fresh_calendar_cache():
    """Start from an empty table (a data migration may have seeded it; rolled back after the test) and
    a cold cache: the cache is per process, never let one test's rows leak into the next."""
    BusinessCalendarDay.objects.all().delete()
    calendar_cache_clear()
    yield
    calendar_cache_clear()


@pytest.fixture
def seeded_2026():
    return seed_calendar([2026])


def row(d: date) -> BusinessCalendarDay:
    return BusinessCalendarDay.objects.get(date=d)


def test_2026_spring_festival(seeded_2026):
    # Feb 15-23 off, Saturdays Feb 14 and Feb 28 are make-up working days (调休).
    for day in range(15, 24):
        assert not is_working_day(date(2026, 2, day)), f"2026-02-{day} should be a holiday"
    assert is_working_day(date(2026, 2, 14))
    assert is_working_day(date(2026, 2, 28))
    assert is_working_day(date(2026, 2, 13))
    assert is_working_day(date(2026, 2, 24))
    saturday = row(date(2026, 2, 14))
    assert saturday.source == Source.CHINESECALENDAR and not saturday.provisional
    assert saturday.name == "春节调休上班"
    assert row(date(2026, 2, 17)).name == "春节"


def test_2026_national_day_and_ordinary_days(seeded_2026):
    assert not is_working_day(date(2026, 10, 1))
    assert row(date(2026, 10, 1)).name == "国庆节"
    assert is_working_day(date(2026, 3, 2))  # an ordinary Monday
    assert not is_working_day(date(2026, 3, 7))  # an ordinary Saturday
    assert BusinessCalendarDay.objects.filter(date__year=2026).count() == 365


def test_seed_report_and_cross_check(seeded_2026):
    report = seeded_2026
    assert report["years"] == [2026]
    assert report["rows"] == 365 and report["inserted"] == 365
    assert report["by_source"] == {"chinesecalendar": [2026]}
    assert report["provisional_years"] == []
    # holidays (CN) knows 2026's make-up days too: the two libraries agree on every day.
    assert report["mismatches"] == []


def test_later_year_is_provisional():
    report = seed_calendar([2026, 2028])
    assert report["by_source"] == {"chinesecalendar": [2026], "holidays": [2028]}
    assert report["provisional_years"] == [2028]
    assert provisional_years() == [2028]
    assert not BusinessCalendarDay.objects.filter(date__year=2028, provisional=False).exists()
    assert row(date(2028, 10, 2)).source == Source.HOLIDAYS
    assert not is_working_day(date(2028, 10, 2))  # National Day (statutory, from holidays)
    assert not is_working_day(date(2028, 1, 26))  # Spring Festival (lunar date computed by holidays)
    assert is_working_day(date(2028, 3, 1))
    # Make-up working days of 2028 are unknown: every weekend day is off.
    assert not BusinessCalendarDay.objects.filter(
        date__year=2028, date__week_day__in=[1, 7], is_working_day=True).exists()


def test_default_years_come_from_today_not_the_wall_clock():
    report = seed_calendar(today=date(2025, 6, 1))
    assert report["years"] == list(range(2004, 2028))
    assert report["provisional_years"] == [2027]
    assert report["by_source"]["chinesecalendar"] == list(range(2004, 2027))


def test_manual_edit_survives_reseeding(seeded_2026):
    d = date(2026, 3, 2)  # an ordinary Monday that ops declare a holiday (e.g. a local closure)
    BusinessCalendarDay.objects.filter(date=d).update(is_working_day=False, name="人工停业",
                                                      source=Source.MANUAL, provisional=False)
    report = seed_calendar([2026])
    assert report["manual_kept"] == 1
    assert report["inserted"] == 0 and report["updated"] == 0 and report["unchanged"] == 365
    kept = row(d)
    assert (kept.is_working_day, kept.name, kept.source) == (False, "人工停业", Source.MANUAL)
    assert not is_working_day(d)


def test_manual_edit_of_a_provisional_year_survives_and_generated_rows_refresh():
    seed_calendar([2028])
    d = date(2028, 2, 5)  # a Saturday ops confirm as a make-up working day
    BusinessCalendarDay.objects.filter(date=d).update(is_working_day=True, source=Source.MANUAL,
                                                      provisional=False)
    # A generated row that drifted (e.g. an older library) is refreshed by a re-seed...
    BusinessCalendarDay.objects.filter(date=date(2028, 3, 1)).update(is_working_day=False)
    report = seed_calendar([2028])
    assert report["updated"] == 1
    assert is_working_day(date(2028, 3, 1))
    # ... but never the manual row.
    assert row(d).source == Source.MANUAL and is_working_day(d)


def test_refresh_false_is_do_nothing(seeded_2026):
    BusinessCalendarDay.objects.filter(date=date(2026, 3, 2)).update(is_working_day=False)
    report = seed_calendar([2026], refresh=False)
    assert report["inserted"] == 0 and report["updated"] == 0
    assert not row(date(2026, 3, 2)).is_working_day


def test_next_working_day_over_the_spring_festival(seeded_2026):
    assert next_working_day(date(2026, 2, 14)) == date(2026, 2, 24)
    assert next_working_day(date(2026, 2, 15)) == date(2026, 2, 24)
    assert next_working_day(date(2026, 2, 13)) == date(2026, 2, 14)  # Friday -> make-up Saturday
    assert next_working_day(date(2026, 2, 24), include_self=True) == date(2026, 2, 24)
    assert next_working_day(date(2026, 2, 20), include_self=True) == date(2026, 2, 24)
    assert previous_working_day(date(2026, 2, 24)) == date(2026, 2, 14)
    assert next_working_day(date(2026, 9, 30)) == date(2026, 10, 8)


def test_add_and_count_working_days(seeded_2026):
    assert add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 14)
    assert add_working_days(date(2026, 2, 13), 2) == date(2026, 2, 24)
    assert add_working_days(date(2026, 2, 24), -1) == date(2026, 2, 14)
    assert add_working_days(date(2026, 2, 15), 0) == date(2026, 2, 15)
    assert working_days_between(date(2026, 2, 13), date(2026, 2, 24)) == 2
    assert working_days_between(date(2026, 2, 24), date(2026, 2, 13)) == -2
    assert working_days_between(date(2026, 2, 15), date(2026, 2, 15)) == 0
    start = date(2026, 1, 1)
    for n in (1, 5, 17, 40, 200):
        assert working_days_between(start, add_working_days(start, n)) == n
    # 2026: 261 weekdays - 19 weekday holidays + 6 make-up working weekends = 248 working days
    assert working_days_between(date(2025, 12, 31), date(2026, 12, 31)) == 248


def test_missing_year_falls_back_to_weekends_with_a_warning(seeded_2026, caplog):
    with caplog.at_level(logging.WARNING, logger=cal.logger.name):
        assert is_working_day(date(2031, 10, 1))  # a Wednesday: the holiday is unknown without a row
        assert not is_working_day(date(2031, 10, 4))  # a Saturday
    warnings = [r for r in caplog.records if "2031" in r.getMessage()]
    assert len(warnings) == 1  # logged once per year and process, not per lookup


def test_cache_is_per_process_and_cleared_explicitly(seeded_2026, django_assert_num_queries):
    d = date(2026, 3, 2)
    with django_assert_num_queries(1):
        assert is_working_day(d)
        assert is_working_day(d + timedelta(days=1))
    BusinessCalendarDay.objects.filter(date=d).update(is_working_day=False, source=Source.MANUAL)
    assert is_working_day(d)  # stale until cleared (or CACHE_TTL_SECONDS pass)
    calendar_cache_clear()
    assert not is_working_day(d)


def test_datetimes_are_refused(seeded_2026):
    from datetime import datetime

    with pytest.raises(TypeError):
        is_working_day(datetime(2026, 2, 14, 9, 0))  # noqa: DTZ001 - the point is that it is refused
