"""People resolving what the pipeline could not: unknown debits, bank returns, reconciliation and missed-debit
exceptions."""

from __future__ import annotations

from datetime import date

from django.db import transaction
from django.utils import timezone

from servicing.domain.money import format_amount_grouped
from servicing.models import Debit, MissedDebitException, ReconciliationException
from servicing.models.debits import ExceptionStatus
from servicing.services import audit
from servicing.services.payments import reverse_payment

from .answers import replace_answer
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
    locked = Debit.objects.select_for_update(of=("self",)).filter(pk=debit.pk, status="unknown").first()
    if locked is None:
        raise ResolutionError(f"debit {debit.reference} is not unknown")
    replace_answer(locked, on_date=on_date, status=outcome, category=cat, message=note, action="resolved by staff",
                   settled_on=on_date if outcome == "succeeded" else None)
    debit.refresh_from_db()
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
def return_debit(debit: Debit, *, on_date: date, reason: str, user=None) -> Debit:
    """A late bank reversal (退回) of a debit we posted as succeeded: succeeded → returned, its payment reversed,
    the succeeded answer kept as an earlier one, and the borrower told that the instalment is owed again and how to pay.

    Refused (ResolutionError or PaymentError) unless the debit succeeded and its payment can be undone
    automatically (see `reverse_payment`); the reconciliation exception then stays open for a person.
    """
    if not reason.strip():
        raise ResolutionError("reason: say what the bank answered")
    debit = Debit.objects.select_for_update(of=("self",)).select_related("loan__borrower", "payment").get(pk=debit.pk)
    if debit.status != "succeeded" or debit.payment is None:
        raise ResolutionError(f"debit {debit.reference} is {debit.status}; only a posted successful debit can "
                              "be returned")
    reverse_payment(debit.payment, on_date=on_date, reason=f"bank return of debit {debit.reference}: {reason}",
                    user=user)
    replace_answer(debit, on_date=on_date, status="returned", category="returned", message=reason,
                   action="payment reversed; borrower told to pay")
    debit.status = "returned"
    ReconciliationException.objects.filter(debit=debit, status=ExceptionStatus.OPEN).update(
        status=ExceptionStatus.RESOLVED, resolved_by=user if getattr(user, "is_authenticated", False) else None,
        resolved_at=timezone.now(), resolution_note=f"bank return processed: {reason}"[:300])
    audit.record("debit.returned", debit, actor=user, reason=reason, amount=debit.amount)
    from notices.services import events

    lang_en = debit.loan.borrower.language == "en"
    events.notify("debit_failed", loan=debit.loan, obj=debit, on_date=on_date, context={
        "amount": format_amount_grouped(debit.amount),
        "reason": (f"the bank returned the debit of {debit.settled_on}" if lang_en
                   else f"银行退回了{debit.settled_on}的扣款"),
        "next_step": ("This payment has been cancelled and the amount is owed again; please pay it now"
                      if lang_en else "该笔还款已撤销，款项需重新支付，请尽快还款")})
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
