"""Hardship restructuring (展期 / 重新分期): deferring due dates and re-ageing arrears.

Both are approved changes of the schedule, each in one transaction holding the loan's row lock.

Re-ageing moves what is overdue into the next N instalments (appending instalments when fewer remain):
- each overdue instalment shrinks to what was paid or waived on it (status paid) or, with nothing paid,
  is superseded — so the live schedule still repays exactly the loan's principal;
- the next N future instalments are superseded by copies carrying their own amounts plus a share of the
  arrears by component (penalty and compound carried as already accrued);
- interest and fee that were recognised as receivable but are now due later are un-recognised with one
  balanced RESCHEDULE entry (DR income / CR receivable); the business day's billing recognises them
  again when the new instalments fall due. Principal, penalty and compound stay receivable unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db import transaction

from servicing.domain.allocation import COMPONENTS
from servicing.domain.money import ZERO, fen
from servicing.domain.schedule import add_months
from servicing.models import Instalment, JournalEntry, Loan
from servicing.models.ledger import Account, EntryKind
from servicing.models.loans import InstalmentStatus, LoanStatus

from . import audit
from .accrual import bring_loan_to
from .ledger import Leg, post_entry
from .payments import refresh_loan_status

BASE = {"principal": "principal_due", "interest": "interest_due", "fee": "fee_due",
        "penalty": "penalty_accrued", "compound": "compound_accrued"}


class RestructureError(ValueError):
    pass


@dataclass
class ReageResult:
    entry: JournalEntry | None
    instalments: list[Instalment]
    arrears: dict[str, Decimal] = field(default_factory=dict)


def _split(amount: Decimal, n: int) -> list[Decimal]:
    share = fen(amount / n)
    parts = [share] * (n - 1)
    return [*parts, amount - sum(parts, ZERO)]


@transaction.atomic
def reage_arrears(*, loan: Loan, n: int, as_of: date, key: str, user=None, reason: str = "") -> ReageResult:
    """Turn the loan's arrears on `as_of` into the next `n` instalments (a repayment plan)."""
    if n < 1 or n > 36:
        raise RestructureError("n: a plan has 1–36 instalments")
    loan = Loan.objects.select_for_update().select_related("product").get(pk=loan.pk)
    if loan.status in (LoanStatus.SETTLED, LoanStatus.WRITTEN_OFF):
        raise RestructureError(f"loan: {loan.contract_no} is {loan.status}")
    live = bring_loan_to(loan, as_of)
    overdue = [i for i in live if i.due_date < as_of and i.total_outstanding > ZERO]
    if not overdue:
        raise RestructureError("loan: nothing is overdue to re-age")
    arrears = {c: sum((i.outstanding(c) for i in overdue), ZERO) for c in COMPONENTS}
    future = [i for i in live if i.due_date > as_of]
    if any(i.total_paid > ZERO or i.billed for i in future[:n]):
        raise RestructureError("loan: a future instalment already carries payments; re-age after applying them")

    # 1. the arrears leave the overdue instalments
    for inst in overdue:
        if all(getattr(inst, f"{c}_paid") + getattr(inst, f"{c}_waived") == ZERO for c in COMPONENTS):
            inst.status = InstalmentStatus.SUPERSEDED
            inst.save(update_fields=["status"])
            continue
        for c in COMPONENTS:
            setattr(inst, BASE[c], getattr(inst, f"{c}_paid") + getattr(inst, f"{c}_waived"))
        inst.status = InstalmentStatus.PAID
        inst.paid_on = inst.paid_on or as_of
        inst.save(update_fields=[*BASE.values(), "status", "paid_on"])

    # 2. ... and join the next n instalments (superseded by copies), appended when fewer remain
    targets = future[:n]
    last = live[-1]
    extra: list[tuple[int, date, date]] = []
    seq, start = max(i.seq for i in live), last.due_date
    while len(targets) + len(extra) < n:
        seq += 1
        due = add_months(start, 1, loan.repayment_day)
        extra.append((seq, start, due))
        start = due
    Instalment.objects.filter(pk__in=[i.pk for i in targets]).update(status=InstalmentStatus.SUPERSEDED)
    shares = {c: _split(arrears[c], n) for c in COMPONENTS}
    created = []
    for k, (seq_k, period_start, due) in enumerate(
            [(i.seq, i.period_start, i.due_date) for i in targets] + extra):
        old = targets[k] if k < len(targets) else None
        created.append(Instalment(
            loan=loan, seq=seq_k, period_start=period_start, due_date=due,
            principal_due=(old.principal_due if old else ZERO) + shares["principal"][k],
            interest_due=(old.interest_due if old else ZERO) + shares["interest"][k],
            fee_due=(old.fee_due if old else ZERO) + shares["fee"][k],
            penalty_accrued=(old.penalty_accrued if old else ZERO) + shares["penalty"][k],
            compound_accrued=(old.compound_accrued if old else ZERO) + shares["compound"][k],
        ))
    created = Instalment.objects.bulk_create(created)

    # 3. recognised interest and fee now due later are un-recognised (re-billed when due)
    entry = None
    legs = [Leg(Account.INTEREST_INCOME, arrears["interest"]), Leg(Account.INTEREST_RECEIVABLE, -arrears["interest"]),
            Leg(Account.FEE_INCOME, arrears["fee"]), Leg(Account.FEE_RECEIVABLE, -arrears["fee"])]
    if arrears["interest"] + arrears["fee"] > ZERO:
        entry, _ = post_entry(kind=EntryKind.RESCHEDULE, key=f"reage:{key}", value_date=as_of, loan=loan, user=user,
                              memo=f"arrears re-aged into {n} instalments", legs=legs)
    refresh_loan_status(loan, as_of)
    audit.record("loan.reaged", loan, actor=user, reason=reason, n=n, as_of=as_of,
                 **{f"arrears_{c}": v for c, v in arrears.items()})
    return ReageResult(entry, created, arrears)


@transaction.atomic
def defer_due_dates(*, loan: Loan, to: date, as_of: date, user=None, reason: str = "") -> list[Instalment]:
    """Grace extension (宽限展期): the overdue instalments fall due again on `to`.

    `to` may not pass the next future instalment's due date, so the schedule keeps its order. No money
    moves: amounts, billing and penalty already accrued are unchanged; penalty resumes only if `to`
    passes unpaid.
    """
    loan = Loan.objects.select_for_update().select_related("product").get(pk=loan.pk)
    live = bring_loan_to(loan, as_of)
    overdue = [i for i in live if i.due_date < as_of and i.total_outstanding > ZERO]
    if not overdue:
        raise RestructureError("loan: nothing is overdue to defer")
    nxt = next((i for i in live if i.due_date > as_of), None)
    if to < as_of or (nxt is not None and to > nxt.due_date):
        raise RestructureError(f"to: must be between {as_of} and the next due date"
                               f"{' ' + nxt.due_date.isoformat() if nxt else ''}")
    for inst in overdue:
        inst.due_date = to
        inst.status = InstalmentStatus.PARTIALLY_PAID if inst.total_paid > ZERO else InstalmentStatus.PENDING
        inst.save(update_fields=["due_date", "status"])
    refresh_loan_status(loan, as_of)
    audit.record("loan.deferred", loan, actor=user, reason=reason, to=to, instalments=len(overdue))
    return overdue
