"""Servicing data. Invariants live in the database as constraints, not only in Python."""

from .audit import AuditLog
from .calendar import BusinessCalendarDay
from .channels import Channel
from .debits import (
    Debit,
    DebitBatch,
    DebitSkip,
    EarlierAnswer,
    GatewayPayment,
    Incident,
    IncidentLoan,
    MissedDebitException,
    PreDueWarning,
    ReconciliationException,
    ResultFile,
    RetryState,
)
from .ledger import Account, JournalEntry, JournalLine
from .loans import Borrower, Instalment, Loan, LoanProduct
from .mandates import Mandate
from .payments import Allocation, Payment
from .runs import BusinessDayRun

__all__ = [
    "Account", "Allocation", "Debit", "DebitBatch", "DebitSkip", "EarlierAnswer", "GatewayPayment", "Incident",
    "IncidentLoan", "MissedDebitException", "PreDueWarning", "ReconciliationException", "ResultFile", "RetryState",
    "AuditLog", "Borrower", "BusinessCalendarDay", "BusinessDayRun", "Channel",
    "Instalment", "JournalEntry", "JournalLine", "Loan", "LoanProduct", "Mandate", "Payment",
]
