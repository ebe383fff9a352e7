"""Reads: the loan as an operator sees it, payoff quotes. No writes here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from servicing.domain.accrual import PayoffQuote, bucket, payoff_quote
from servicing.domain.money import ZERO, format_amount
from servicing.domain.schedule import Method, accrued_interest
from servicing.models import Debit, Instalment, Loan
from servicing.models.debits import DebitStatus
from servicing.models.loans import InstalmentStatus, PrepaymentRule
from servicing.models.mandates import MandateStatus

KEYS = ("principal", "interest", "penalty", "compound", "fees")


def live_instalments(loan: Loan) -> list[Instalment]:
    return list(loan.instalments.exclude(status=InstalmentStatus.SUPERSEDED).order_by("seq"))


def outstanding(instalments: list[Instalment], *, overdue_only: bool = False) -> dict[str, Decimal]:
    """Unpaid amounts by component: principal all unpaid; interest and fees only what is due (billed)."""
    out = dict.fromkeys(KEYS, ZERO)
    for inst in instalments:
        if overdue_only and inst.status != InstalmentStatus.OVERDUE:
            continue
        out["principal"] += inst.outstanding("principal")
        if inst.billed:
            out["interest"] += inst.outstanding("interest")
            out["fees"] += inst.outstanding("fee")
        out["penalty"] += inst.outstanding("penalty")
        out["compound"] += inst.outstanding("compound")
    return out


def _with_total(values: dict[str, Decimal]) -> dict[str, str]:
    data = {k: format_amount(v) for k, v in values.items()}
    data["total"] = format_amount(sum(values.values(), ZERO))
    return data


def loan_status(loan: Loan) -> dict:
    """The loan JSON of contracts.md (loan_status --json and the API's loan detail)."""
    instalments = live_instalments(loan)
    mandate = (loan.mandates.filter(status__in=[MandateStatus.ACTIVE, MandateStatus.SUSPENDED, MandateStatus.PENDING])
               .order_by("-signed_at").first() or loan.mandates.order_by("-signed_at").first())
    data = {
        "contract_no": loan.contract_no,
        "status": loan.status,
        "dpd": loan.dpd,
        "outstanding": _with_total(outstanding(instalments)),
        "overdue": _with_total(outstanding(instalments, overdue_only=True)),
        "credit_balance": format_amount(loan.credit_balance),
        "settled_on": loan.settled_on.isoformat() if loan.settled_on else None,
        "mandate": {"status": mandate.status, "account": mandate.masked_account} if mandate else None,
        "collection_case": collection_case(loan),
        "certificate": certificate(loan),
        "instalments": [
            {
                "seq": i.seq,
                "due_date": i.due_date.isoformat(),
                "principal": format_amount(i.principal_due),
                "interest": format_amount(i.interest_due),
                "fee": format_amount(i.fee_due),
                "penalty": format_amount(i.penalty_accrued + i.compound_accrued),
                "paid": format_amount(i.total_paid),
                "status": i.status,
            }
            for i in instalments
        ],
    }
    return data


def collection_case(loan: Loan) -> dict | None:
    """The open collection case, once the collections app provides one."""
    try:
        from collections_app.selectors import case_summary
    except ImportError:
        return None
    return case_summary(loan)


def certificate(loan: Loan) -> dict | None:
    try:
        from notices.selectors import certificate_summary
    except ImportError:
        return None
    return certificate_summary(loan)


def loan_bucket(loan: Loan) -> str:
    return bucket(loan.dpd)


def quote_payoff(loan: Loan, as_of: date) -> PayoffQuote:
    """What settles the loan on `as_of`: all unpaid principal, interest due and accrued to the day,
    penalty (including what would accrue up to the day), fees, and the product's prepayment fee."""
    from servicing.services.accrual import pending_penalty

    instalments = live_instalments(loan)
    principal = interest_due = penalty = compound = fees = ZERO
    current_interest = ZERO
    future_principal = ZERO
    current = None
    for inst in instalments:
        principal += inst.outstanding("principal")
        penalty += inst.outstanding("penalty")
        compound += inst.outstanding("compound")
        if inst.due_date <= as_of:
            interest_due += inst.outstanding("interest")
            fees += inst.outstanding("fee")
            extra_pen, extra_cmp = pending_penalty(loan, inst, as_of)
            penalty += extra_pen
            compound += extra_cmp
        else:
            future_principal += inst.outstanding("principal")
            if current is None:
                current = inst
    if current is not None and as_of > current.period_start:
        if loan.schedule_method == Method.FLAT_FEE:
            fees += current.fee_due
        else:
            current_interest = accrued_interest(future_principal, loan.annual_rate, current.period_start, as_of)
    product = loan.product
    fee_rate = product.prepayment_fee_pct / 100 if product.prepayment_rule == PrepaymentRule.FEE else ZERO
    return payoff_quote(remaining_principal=principal, interest_due_unpaid=interest_due,
                        interest_accrued_current_period=current_interest, penalty=penalty, compound=compound,
                        fees=fees, prepayment_fee_rate=fee_rate, prepayment_fee_base=future_principal)


@dataclass(frozen=True)
class DebitAnswer:
    """One answer of the bank for a debit, as the borrower and staff read it."""

    business_date: date
    outcome: str
    amount: Decimal


def debit_answers(debit: Debit) -> list[DebitAnswer]:
    """The bank's answers for a debit, oldest first: those a later one replaced, then its own."""
    def label(outcome: str) -> str:
        return str(DebitStatus(outcome).label) if outcome in DebitStatus.values else outcome

    answers = [DebitAnswer(a.business_date, label(a.outcome), a.amount) for a in debit.earlier_answers.order_by("id")]
    if debit.result_on is not None:
        answers.append(DebitAnswer(debit.result_on, label(debit.status), debit.amount))
    return answers
