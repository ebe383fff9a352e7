"""Notices' business-day step: reminders that fall due on the date (issue 3)."""

from datetime import date


def step(d: date) -> dict:
    return {}
