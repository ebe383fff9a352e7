"""Collections' business-day step: open, update, cure and close cases; promises; escalation (issue 5)."""

from datetime import date


def step(d: date) -> dict:
    return {}
