"""Maker-checker (经办/复核) for everything that forgives money or bends a rule.

A maker files a request; the request stores what the maker saw (`maker_view`: the loan JSON and, for
money, the figures the decision rests on). A checker — never the maker — approves or rejects it, and on
approval the request is executed through the owning service. Every step is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from console.models import ApprovalKind, ApprovalRequest, ApprovalStatus
from servicing.domain.money import MoneyError, parse_amount
from servicing.models import Loan, Mandate
from servicing.selectors import loan_status
from servicing.services import audit


class ApprovalError(ValueError):
    """A request that cannot be filed or decided as asked; the message starts with the field at fault."""


# ------------------------------------------------------------------------------ executors


def _waive(req: ApprovalRequest, checker) -> dict:
    from servicing.services.waivers import waive

    p = req.payload
    inst = req.loan.instalments.exclude(status="superseded").get(seq=p["instalment"])
    entry = waive(loan=req.loan, instalment=inst, component=p["component"], amount=Decimal(p["amount"]),
                  requested_by=req.requested_by, approved_by=checker, reason=req.reason,
                  value_date=date.fromisoformat(p["value_date"]), key=f"approval:{req.pk}")
    return {"entry": entry.pk}


def _write_off(req: ApprovalRequest, checker) -> dict:
    from servicing.services.writeoffs import write_off

    result = write_off(loan=req.loan, requested_by=req.requested_by, approved_by=checker, reason=req.reason,
                       value_date=date.fromisoformat(req.payload["value_date"]))
    return {"result": str(result)}


def _reactivate_mandate(req: ApprovalRequest, checker) -> dict:
    from servicing.services.mandates import activate_mandate

    mandate = Mandate.objects.get(agreement_no=req.payload["agreement_no"], loan=req.loan)
    activate_mandate(mandate, user=checker, reason=f"approval #{req.pk}: {req.reason}")
    return {"mandate": mandate.agreement_no}


def _payment_on_closed_loan(req: ApprovalRequest, checker) -> dict:
    from servicing.services.payments import post_payment

    p = req.payload
    res = post_payment(loan=req.loan, amount=p["amount"], channel=p["channel"],
                       value_date=date.fromisoformat(p["value_date"]), reference=p["reference"], user=checker,
                       note=f"approval #{req.pk}", allow_settled=True)
    return {"payment": res.payment.reference, "created": res.created}


ACTIONS: dict[str, tuple[str, Callable]] = {
    "waive": (ApprovalKind.WAIVER, _waive),
    "write_off": (ApprovalKind.WRITE_OFF, _write_off),
    "reactivate_mandate": (ApprovalKind.OVERRIDE, _reactivate_mandate),
    "payment_on_closed_loan": (ApprovalKind.OVERRIDE, _payment_on_closed_loan),
}


# ------------------------------------------------------------------------------ validation and snapshot


def _validate(action: str, loan: Loan, payload: dict) -> dict:
    """Normalise the payload; the maker's errors are caught at filing time, not at approval."""
    p = dict(payload or {})
    if action in ("waive", "write_off", "payment_on_closed_loan"):
        try:
            p["value_date"] = date.fromisoformat(str(p.get("value_date", ""))).isoformat()
        except ValueError as exc:
            raise ApprovalError("value_date: a date YYYY-MM-DD is required") from exc
    if action == "waive":
        if p.get("component") not in ("principal", "interest", "fee", "penalty", "compound"):
            raise ApprovalError("component: one of principal, interest, fee, penalty, compound")
        try:
            p["amount"] = str(parse_amount(str(p.get("amount", ""))))
        except MoneyError as exc:
            raise ApprovalError(f"amount: {exc}") from exc
        try:
            seq = int(p.get("instalment"))
        except (TypeError, ValueError) as exc:
            raise ApprovalError("instalment: the instalment number (seq) is required") from exc
        inst = loan.instalments.exclude(status="superseded").filter(seq=seq).first()
        if inst is None:
            raise ApprovalError(f"instalment: loan {loan.contract_no} has no instalment {seq}")
        if Decimal(p["amount"]) > inst.outstanding(p["component"]):
            raise ApprovalError(f"amount: {p['amount']} exceeds the {p['component']} outstanding "
                                f"({inst.outstanding(p['component'])})")
        p["instalment"] = seq
    elif action == "reactivate_mandate":
        if not Mandate.objects.filter(agreement_no=p.get("agreement_no", ""), loan=loan).exists():
            raise ApprovalError("agreement_no: no such mandate for this loan")
    elif action == "payment_on_closed_loan":
        try:
            p["amount"] = str(parse_amount(str(p.get("amount", ""))))
        except MoneyError as exc:
            raise ApprovalError(f"amount: {exc}") from exc
        if p.get("channel") not in ("counter", "transfer"):
            raise ApprovalError("channel: counter or transfer")
        if not str(p.get("reference", "")).strip():
            raise ApprovalError("reference: required")
    return p


def maker_view(loan: Loan, payload: dict) -> dict:
    """What the maker saw: the loan JSON at filing time, plus a payoff quote for dated requests."""
    from servicing.selectors import quote_payoff

    view = {"loan": loan_status(loan), "captured_at": timezone.now().isoformat()}
    if payload.get("value_date") and loan.status not in ("settled", "written_off"):
        try:
            view["payoff_quote"] = quote_payoff(loan, date.fromisoformat(payload["value_date"])).as_json()
        except Exception as exc:  # a quote that cannot be computed is itself information for the checker
            view["payoff_quote_error"] = str(exc)
    return view


# ------------------------------------------------------------------------------ commands


@transaction.atomic
def file_request(*, loan: Loan, action: str, payload: dict, reason: str, maker) -> ApprovalRequest:
    if action not in ACTIONS:
        raise ApprovalError(f"action: '{action}' is not one of {', '.join(ACTIONS)}")
    if not (reason or "").strip():
        raise ApprovalError("reason: a request needs a reason")
    if maker is None or not maker.is_authenticated:
        raise ApprovalError("requested_by: a logged-in maker is required")
    payload = _validate(action, loan, payload)
    req = ApprovalRequest.objects.create(kind=ACTIONS[action][0], action=action, loan=loan, payload=payload,
                                         maker_view=maker_view(loan, payload), reason=reason.strip(),
                                         requested_by=maker)
    audit.record("approval.requested", req, actor=maker, reason=reason, request_action=action, loan=loan.contract_no)
    return req


def _claim(req: ApprovalRequest, checker) -> ApprovalRequest:
    if checker is None or not checker.is_authenticated:
        raise ApprovalError("decided_by: a logged-in checker is required")
    locked = ApprovalRequest.objects.select_for_update().get(pk=req.pk)
    if locked.status != ApprovalStatus.PENDING:
        raise ApprovalError(f"status: request #{req.pk} is already {locked.status}")
    if locked.requested_by_id == checker.pk:
        raise ApprovalError("decided_by: the checker must be someone other than the maker")
    return locked


@transaction.atomic
def approve(req: ApprovalRequest, *, checker, note: str = "") -> ApprovalRequest:
    """Approve and execute. An execution error marks the request failed (kept, with the error)."""
    req = _claim(req, checker)
    executor = ACTIONS[req.action][1]
    try:
        with transaction.atomic():
            result = executor(req, checker)
        status = ApprovalStatus.APPROVED
    except (ApprovalError, ValueError, LookupError) as exc:
        result, status = {"error": str(exc)}, ApprovalStatus.FAILED
    ApprovalRequest.objects.filter(pk=req.pk).update(status=status, decided_by=checker, decided_at=timezone.now(),
                                                     decision_note=note[:200], result=result)
    req.refresh_from_db()
    audit.record(f"approval.{status}", req, actor=checker, reason=note, request_action=req.action,
                 maker=req.requested_by.get_username(), **result)
    return req


@transaction.atomic
def reject(req: ApprovalRequest, *, checker, note: str) -> ApprovalRequest:
    if not (note or "").strip():
        raise ApprovalError("decision_note: a rejection needs a reason")
    req = _claim(req, checker)
    ApprovalRequest.objects.filter(pk=req.pk).update(status=ApprovalStatus.REJECTED, decided_by=checker,
                                                     decided_at=timezone.now(), decision_note=note[:200])
    req.refresh_from_db()
    audit.record("approval.rejected", req, actor=checker, reason=note, request_action=req.action)
    return req
