"""Raising borrower-facing events. Every app calls :func:`notify`; the outbox does the rest.

`notify` is called INSIDE the transaction of the change that causes the notice: the notice rows are
written in that transaction (a rollback removes them) and dispatched by workers after commit.
Event codes are public (notices.md): pre_debit_reminder, payment_receipt, debit_failed, debit_missed,
mandate_cancelled, overdue_reminder, incident_apology, promise_confirmed, plan_confirmed, settlement,
complaint_received, complaint_answered.
"""

from __future__ import annotations

from datetime import date
from typing import Any


def notify(event: str, *, loan, obj: Any = None, context: dict | None = None, on_date: date | None = None,
           channels: list[str] | None = None, collection: bool = False) -> list:
    """Queue the notice(s) of `event` about `obj` (default: the loan) for the loan's borrower.

    Dedupe key = event + object + on_date, so re-running a business day queues nothing new.
    `context` carries the template variables; `collection=True` marks collection messages that count
    toward the contact caps. Returns the notices created (empty when deduplicated).
    (Filled in by the notices outbox — issue 3.)
    """
    return []


def payment_received(payment) -> None:
    """payment_receipt for any successful payment, debit or active."""
    notify("payment_receipt", loan=payment.loan, obj=payment, on_date=payment.value_date)


def loan_settled(loan) -> None:
    """settlement notice with the certificate (结清证明)."""
    notify("settlement", loan=loan, obj=loan, on_date=loan.settled_on)


def mandate_cancelled(mandate) -> None:
    notify("mandate_cancelled", loan=mandate.loan, obj=mandate)
