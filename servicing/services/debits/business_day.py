"""The debit pipeline's business-day work: the no-debit sweep and the pre-due check (issue 4)."""

from datetime import date


def sweep(d: date) -> dict:
    return {}
