"""Domain events that notify the borrower. The notices outbox (issue 3) fills these in."""

from __future__ import annotations


def payment_received(payment) -> None:
    """Queue the payment receipt (payment_receipt) once the payment commits."""


def loan_settled(loan) -> None:
    """Queue the settlement notice and issue the certificate (settlement) once settlement commits."""


def mandate_cancelled(mandate) -> None:
    """Queue the mandate_cancelled notice with its consequences."""
