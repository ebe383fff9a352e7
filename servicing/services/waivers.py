"""Waivers (减免): forgiving part of what is owed, always approved by a second person (maker-checker)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from django.db import transaction

from servicing.domain.money import ZERO, fen
from servicing.models import Instalment, JournalEntry, Loan
from servicing.models.ledger import RECEIVABLE_BY_COMPONENT, Account, EntryKind

from . import audit
from .ledger import Leg, post_entry
from .payments import instalment_status, refresh_loan_status
from .settlement import settle_if_paid


class WaiverError(ValueError):
    pass


@transaction.atomic
def waive(*, loan: Loan, instalment: Instalment, component: str, amount: Decimal, requested_by, approved_by,
          reason: str, value_date: date, key: str | None = None) -> JournalEntry:
    """Post a waiver: DR waiver expense, CR the component's receivable; the instalment records it.

    The requester and the approver must be different people, and both are recorded with the reason.
    `key` makes a bulk waiver (e.g. an incident's) idempotent.
    """
    if component not in RECEIVABLE_BY_COMPONENT:
        raise WaiverError(f"component: '{component}' is not one of {', '.join(RECEIVABLE_BY_COMPONENT)}")
    if requested_by is None or approved_by is None or requested_by.pk == approved_by.pk:
        raise WaiverError("approved_by: a waiver must be approved by someone other than the requester")
    if not reason.strip():
        raise WaiverError("reason: a waiver needs a reason")
    amount = fen(amount)
    if amount <= ZERO:
        raise WaiverError("amount: must be greater than zero")
    loan = Loan.objects.select_for_update().get(pk=loan.pk)
    inst = Instalment.objects.select_for_update().get(pk=instalment.pk, loan=loan)
    if component in ("interest", "fee") and not inst.billed:
        raise WaiverError(f"component: the {component} of instalment {inst.seq} is not due yet")
    if amount > inst.outstanding(component):
        raise WaiverError(f"amount: {amount} exceeds the {component} outstanding ({inst.outstanding(component)})")
    entry, created = post_entry(
        kind=EntryKind.WAIVER, key=key or f"waiver:{inst.pk}:{component}:{uuid.uuid4().hex}",
        value_date=value_date, loan=loan, memo=f"waiver {component} #{inst.seq}: {reason}"[:200], user=approved_by,
        legs=[Leg(Account.WAIVER_EXPENSE, amount), Leg(RECEIVABLE_BY_COMPONENT[component], -amount)])
    if not created:
        return entry
    setattr(inst, f"{component}_waived", getattr(inst, f"{component}_waived") + amount)
    inst.status = instalment_status(inst, value_date)
    if inst.status == "paid" and inst.paid_on is None:
        inst.paid_on = value_date
    inst.save(update_fields=[f"{component}_waived", "status", "paid_on"])
    refresh_loan_status(loan, value_date)
    settle_if_paid(loan, user=approved_by)
    audit.record("waiver.posted", loan, actor=approved_by, reason=reason, component=component, amount=amount,
                 instalment=inst.seq, requested_by=requested_by.get_username())
    return entry
