"""People resolving what the pipeline could not: unknown debits, reconciliation and missed-debit exceptions."""

from __future__ import annotations

from datetime import date

from django.db import transaction
from django.utils import timezone

from servicing.models import Debit, DebitAttempt, MissedDebitException, ReconciliationException
from servicing.models.debits import ExceptionStatus
from servicing.services import audit

from .failures import Failure, apply_failures
from .policy import CATEGORIES
from .posting import post_debit_payment


class ResolutionError(ValueError):
    pass


@transaction.atomic
def resolve_unknown_debit(debit: Debit, *, outcome: str, on_date: date, category: str = "", user=None,
                          note: str = "") -> Debit:
    """The bank answered a query: an unknown debit becomes succeeded (posted) or failed (category action)."""
    if outcome not in ("succeeded", "failed"):
        raise ResolutionError("outcome: succeeded or failed")
    if outcome == "failed" and category not in CATEGORIES:
        raise ResolutionError(f"category: '{category}' is not one of {', '.join(CATEGORIES)}")
    cat = category if outcome == "failed" else "success"
    updated = Debit.objects.filter(pk=debit.pk, status="unknown").update(
        status=outcome, category=cat, settled_on=on_date if outcome == "succeeded" else None)
    if not updated:
        raise ResolutionError(f"debit {debit.reference} is not unknown")
    debit.refresh_from_db()
    DebitAttempt.objects.create(debit=debit, business_date=on_date, outcome=outcome, category=cat,
                                raw_message=note[:200], action="resolved by staff", amount=debit.amount)
    if outcome == "succeeded":
        post_debit_payment(Debit.objects.select_related("loan", "batch").get(pk=debit.pk))
    else:
        apply_failures([Failure(debit.pk, category, on_date)])
    ReconciliationException.objects.filter(debit=debit, reason_code="unknown_unresolved", status="open").update(
        status=ExceptionStatus.RESOLVED, resolved_by=user if getattr(user, "is_authenticated", False) else None,
        resolved_at=timezone.now(), resolution_note=f"debit resolved as {outcome}")
    audit.record("debit.unknown_resolved", debit, actor=user, outcome=outcome, category=category, reason=note)
    return debit


@transaction.atomic
def resolve_exception(exc: ReconciliationException | MissedDebitException, *, note: str, user) -> None:
    if not note.strip():
        raise ResolutionError("note: say how it was resolved")
    updated = type(exc).objects.filter(pk=exc.pk, status=ExceptionStatus.OPEN).update(
        status=ExceptionStatus.RESOLVED, resolved_by=user if getattr(user, "is_authenticated", False) else None,
        resolved_at=timezone.now(), resolution_note=note[:300])
    if updated:
        audit.record("debit_exception.resolved", exc, actor=user, reason=note)
