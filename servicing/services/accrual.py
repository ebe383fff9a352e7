"""Bringing one loan up to a date: interest and fees billed when due, penalty accrued past grace.

The business day does the same for every loan at once in SQL (services/business_day.py); this per-loan
path runs inside a payment or a payoff so the borrower pays exactly what is owed on the value date.
Both use the same idempotency keys, so whichever runs first wins and the other adds nothing.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from servicing.domain import accrual
from servicing.domain.money import ZERO
from servicing.models import Instalment, Loan, LoanProduct
from servicing.models.ledger import Account, EntryKind
from servicing.models.loans import InstalmentStatus

from .ledger import Leg, post_entry

ONE_DAY = timedelta(days=1)


def penalty_base_rate(loan: Loan) -> Decimal:
    """Penalty runs on the contract rate; a fee-only product (分期) uses its fee as the rate."""
    return loan.annual_rate if loan.annual_rate > 0 else loan.fee_rate * 12


def grace_end(due_date: date, product: LoanProduct) -> date:
    end = due_date + timedelta(days=product.grace_days)
    if product.grace_end_rolls_to_working_day:
        from servicing.services.calendar import next_working_day

        end = next_working_day(end, include_self=True)
    return end


def bill_instalment(inst: Instalment, *, loan: Loan) -> None:
    """Recognise an instalment's interest and fee as receivable (idempotent on the instalment)."""
    if inst.billed:
        return
    if inst.interest_due or inst.fee_due:
        post_entry(kind=EntryKind.BILLING, key=f"billing:{inst.pk}", value_date=inst.due_date, loan=loan,
                   memo=f"instalment {inst.seq} due",
                   legs=[Leg(Account.INTEREST_RECEIVABLE, inst.interest_due),
                         Leg(Account.INTEREST_INCOME, -inst.interest_due),
                         Leg(Account.FEE_RECEIVABLE, inst.fee_due), Leg(Account.FEE_INCOME, -inst.fee_due)])
    Instalment.objects.filter(pk=inst.pk).update(billed=True)
    inst.billed = True


def bring_loan_to(loan: Loan, value_date: date) -> list[Instalment]:
    """Bill what is due by `value_date` and accrue penalty through the day before it.

    The value date itself is not charged: money received that day stops the clock. Returns the live
    instalments (not superseded), refreshed, oldest first. Caller holds the loan row lock.
    """
    product = loan.product
    live = list(loan.instalments.exclude(status=InstalmentStatus.SUPERSEDED).order_by("seq"))
    rate = penalty_base_rate(loan)
    markup = product.penalty_markup_pct / 100
    through = value_date - ONE_DAY
    for inst in live:
        if inst.due_date > value_date:
            break
        bill_instalment(inst, loan=loan)
        if inst.due_date >= value_date or value_date <= grace_end(inst.due_date, product):
            continue
        last = max(inst.penalty_accrued_through or inst.due_date, inst.due_date)
        days = (through - last).days
        if days <= 0:
            continue
        pen = accrual.penalty_interest(inst.outstanding("principal"), rate, markup, days)
        cmp = (accrual.compound_interest(inst.outstanding("interest"), rate, markup, days)
               if product.compound_interest else ZERO)
        if pen or cmp:
            post_entry(kind=EntryKind.ACCRUAL, key=f"accrual:{inst.pk}:{through.isoformat()}", value_date=through,
                       loan=loan, memo="penalty accrual",
                       legs=[Leg(Account.PENALTY_RECEIVABLE, pen), Leg(Account.PENALTY_INCOME, -pen),
                             Leg(Account.COMPOUND_RECEIVABLE, cmp), Leg(Account.COMPOUND_INCOME, -cmp)])
        inst.penalty_accrued += pen
        inst.compound_accrued += cmp
        inst.penalty_accrued_through = through
        Instalment.objects.filter(pk=inst.pk).update(
            penalty_accrued=inst.penalty_accrued, compound_accrued=inst.compound_accrued,
            penalty_accrued_through=through)
    return live


def pending_penalty(loan: Loan, inst: Instalment, as_of: date) -> tuple[Decimal, Decimal]:
    """Penalty and compound that would accrue through the day before `as_of` (for quotes; posts nothing)."""
    product = loan.product
    if inst.due_date >= as_of or as_of <= grace_end(inst.due_date, product):
        return ZERO, ZERO
    last = max(inst.penalty_accrued_through or inst.due_date, inst.due_date)
    days = (as_of - ONE_DAY - last).days
    if days <= 0:
        return ZERO, ZERO
    rate, markup = penalty_base_rate(loan), product.penalty_markup_pct / 100
    pen = accrual.penalty_interest(inst.outstanding("principal"), rate, markup, days)
    cmp = (accrual.compound_interest(inst.outstanding("interest"), rate, markup, days)
           if product.compound_interest else ZERO)
    return pen, cmp
