"""Mandate (代扣协议) lifecycle: sign → active ⇄ suspended → cancelled, each a conditional update.

Cancellation is never silent: future unsent debits are cancelled, the borrower is told what happens next,
and the loan carries a risk signal (the cancellation itself, with its cause and day).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from servicing.models import Channel, Loan, Mandate
from servicing.models.mandates import CancelCause, MandateStatus

from . import audit


class MandateError(ValueError):
    pass


def _next_agreement_no() -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT nextval('servicing_mandate_no_seq')")
        (n,) = cur.fetchone()
    return f"MD{timezone.localdate():%Y%m%d}{n:07d}"


@transaction.atomic
def sign_mandate(*, loan: Loan, channel: Channel, account_no: str, account_name: str, bank_code: str,
                 single_limit: Decimal | None = None, daily_limit: Decimal | None = None, user=None) -> Mandate:
    """Record a signed mandate awaiting the bank's confirmation."""
    account_no = account_no.replace(" ", "")
    if not (account_no.isdigit() and 12 <= len(account_no) <= 19):
        raise MandateError(f"account-no: '{account_no}' is not a 12–19 digit account number")
    if account_name.strip() != loan.borrower.name:
        raise MandateError("account-name: the name on the account must match the borrower")
    if not bank_code.strip():
        raise MandateError("bank-code: must not be empty")
    if Mandate.objects.filter(loan=loan, status=MandateStatus.PENDING).exists():
        raise MandateError("a mandate for this loan is already awaiting confirmation")
    mandate = Mandate.objects.create(
        agreement_no=_next_agreement_no(), borrower=loan.borrower, loan=loan, channel=channel,
        account_no=account_no, account_name=account_name.strip(), bank_code=bank_code.strip(),
        single_limit=single_limit, daily_limit=daily_limit, signed_at=timezone.now(),
    )
    audit.record("mandate.signed", mandate, actor=user, loan=loan.contract_no)
    return mandate


@transaction.atomic
def activate_mandate(mandate: Mandate, *, user=None, reason: str = "") -> Mandate:
    """Bank confirmed (pending → active) or staff re-activated (suspended → active).

    Activating a new account replaces the loan's previous one: it is cancelled with cause `replaced`.
    """
    previous = list(Mandate.objects.select_for_update().filter(
        loan_id=mandate.loan_id, status__in=[MandateStatus.ACTIVE, MandateStatus.SUSPENDED]).exclude(pk=mandate.pk))
    for old in previous:
        cancel_mandate(old, cause=CancelCause.REPLACED, reason=f"replaced by {mandate.agreement_no}", user=user,
                       notify_borrower=False)
    updated = Mandate.objects.filter(pk=mandate.pk, status__in=[MandateStatus.PENDING, MandateStatus.SUSPENDED]).update(
        status=MandateStatus.ACTIVE, activated_at=timezone.now(), suspend_reason="")
    if not updated:
        raise MandateError(f"mandate {mandate.agreement_no} cannot be activated from status {mandate.status}")
    mandate.refresh_from_db()
    audit.record("mandate.activated", mandate, actor=user, reason=reason)
    return mandate


@transaction.atomic
def suspend_mandate(mandate: Mandate, *, reason: str, user=None) -> Mandate:
    if not reason.strip():
        raise MandateError("reason: a suspension needs a reason")
    if not suspend_mandates({mandate.pk: reason}, user=user):
        raise MandateError(f"mandate {mandate.agreement_no} is not active")
    mandate.refresh_from_db()
    return mandate


@transaction.atomic
def suspend_mandates(reasons: dict[int, str], *, user=None) -> list[int]:
    """Suspend the active ones of these mandates ({mandate id: reason}), each audited with its reason, in one
    statement each (a result file can freeze a thousand accounts). Returns the ids suspended."""
    if not reasons:
        return []
    with connection.cursor() as cur:
        cur.execute("""
            UPDATE servicing_mandate m SET status = %(suspended)s, suspended_at = now(), suspend_reason = x.reason
              FROM unnest(%(ids)s::bigint[], %(reasons)s::text[]) AS x(id, reason)
             WHERE m.id = x.id AND m.status = %(active)s
            RETURNING m.id""",
                    {"suspended": MandateStatus.SUSPENDED, "active": MandateStatus.ACTIVE, "ids": list(reasons),
                     "reasons": [reasons[i][:200] for i in reasons]})
        done = sorted(r[0] for r in cur.fetchall())
    audit.record_many("mandate.suspended", "servicing.mandate", {pk: reasons[pk] for pk in done}, actor=user)
    return done


@transaction.atomic
def cancel_mandate(mandate: Mandate, *, cause: str, reason: str, user=None, notify_borrower: bool = True) -> Mandate:
    """Cancel with who and why; future unsent debits go, the borrower hears the consequences."""
    if cause not in CancelCause.values:
        raise MandateError(f"cause: '{cause}' is not one of {', '.join(CancelCause.values)}")
    updated = Mandate.objects.filter(pk=mandate.pk).exclude(status=MandateStatus.CANCELLED).update(
        status=MandateStatus.CANCELLED, cancelled_at=timezone.now(), cancel_cause=cause,
        cancel_reason=reason[:200], cancelled_by=user if getattr(user, "is_authenticated", False) else None)
    if not updated:
        raise MandateError(f"mandate {mandate.agreement_no} is already cancelled")
    mandate.refresh_from_db()
    from servicing.services.debits import hooks  # future debits not yet sent are cancelled

    hooks.cancel_unsent_debits_of_mandate(mandate)
    if notify_borrower:
        from notices.services import events

        events.mandate_cancelled(mandate)
    audit.record("mandate.cancelled", mandate, actor=user, reason=reason, cause=cause)
    return mandate
