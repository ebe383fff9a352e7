"""Write-off (核销): taking an uncollectable loan's receivables off the books, approved by a second person.

Everything receivable on the value date (principal, billed interest and fees, penalty accrued to the day
before) moves to the write-off expense account; the instalments record it as forgiven (`*_waived`) so the
journal and the schedule still agree, and the loan is `written_off`. Recoveries afterwards are payments
accepted with `allow_settled=True` into the credit balance.
"""

from __future__ import annotations

from datetime import date

from django.db import transaction

from servicing.domain.money import ZERO
from servicing.models import Instalment, JournalEntry, Loan
from servicing.models.ledger import RECEIVABLE_BY_COMPONENT, Account, EntryKind
from servicing.models.loans import COMPONENTS, InstalmentStatus, LoanStatus

from . import audit
from .accrual import bring_loan_to
from .ledger import Leg, post_entry


class WriteOffError(ValueError):
    pass


@transaction.atomic
def write_off(*, loan: Loan, requested_by, approved_by, reason: str, value_date: date) -> JournalEntry:
    if requested_by is None or approved_by is None or requested_by.pk == approved_by.pk:
        raise WriteOffError("approved_by: a write-off must be approved by someone other than the requester")
    if not reason.strip():
        raise WriteOffError("reason: a write-off needs a reason")
    loan = Loan.objects.select_for_update().select_related("product").get(pk=loan.pk)
    if loan.status in (LoanStatus.SETTLED, LoanStatus.WRITTEN_OFF):
        raise WriteOffError(f"contract: loan {loan.contract_no} is already {loan.status}")
    live = bring_loan_to(loan, value_date)
    totals = dict.fromkeys(COMPONENTS, ZERO)
    touched: list[Instalment] = []
    for inst in live:
        changed = False
        for component in COMPONENTS:
            if component in ("interest", "fee") and not inst.billed:
                continue
            amount = inst.outstanding(component)
            if amount > ZERO:
                setattr(inst, f"{component}_waived", getattr(inst, f"{component}_waived") + amount)
                totals[component] += amount
                changed = True
        if changed:
            if inst.billed:
                inst.status, inst.paid_on = InstalmentStatus.PAID, value_date
            touched.append(inst)
    total = sum(totals.values(), ZERO)
    if total == ZERO:
        raise WriteOffError(f"contract: loan {loan.contract_no} has nothing receivable to write off")
    legs = [Leg(Account.WRITEOFF_EXPENSE, total)]
    legs += [Leg(RECEIVABLE_BY_COMPONENT[c], -v) for c, v in totals.items() if v]
    if loan.credit_balance > ZERO:  # money the borrower left with us goes back to them
        legs += [Leg(Account.CREDIT_BALANCE, loan.credit_balance), Leg(Account.REFUND_PAYABLE, -loan.credit_balance)]
    entry, _ = post_entry(kind=EntryKind.WRITEOFF, key=f"writeoff:{loan.pk}", value_date=value_date, loan=loan,
                          legs=legs, memo=f"write-off: {reason}"[:200], user=approved_by)
    for inst in touched:
        inst.save(update_fields=[*(f"{c}_waived" for c in COMPONENTS), "status", "paid_on"])
    Loan.objects.filter(pk=loan.pk).update(status=LoanStatus.WRITTEN_OFF, credit_balance=ZERO)
    audit.record("loan.written_off", loan, actor=approved_by, reason=reason, total=total,
                 requested_by=requested_by.get_username(), **{k: v for k, v in totals.items() if v})
    return entry
