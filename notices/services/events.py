"""Raising borrower-facing events. Every app calls :func:`notify`; the outbox does the rest.

`notify` is called INSIDE the transaction of the change that causes the notice: the notice rows are
written in that transaction (a rollback removes them) and dispatched by workers after commit.
It only writes rows — no rendering, no PDF, no network — so the calling service stays fast.
Event codes are public (notices.md): pre_debit_reminder, payment_receipt, debit_failed, debit_missed,
mandate_cancelled, overdue_reminder, incident_apology, promise_confirmed, plan_confirmed, settlement,
complaint_received, complaint_answered. The variables each event needs are in notices.catalog.EVENTS.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from notices.catalog import event_spec
from notices.conf import business, conf, public_url
from servicing.domain.money import format_amount_grouped

from .outbox import NoticeError, queue

COMPONENT_LABELS = {
    "zh-hans": {"principal": "本金", "interest": "利息", "fee": "手续费", "penalty": "罚息", "compound": "复利"},
    "en": {"principal": "principal", "interest": "interest", "fee": "fees", "penalty": "penalty interest",
           "compound": "compound interest"},
}


def _lang(loan) -> str:
    return "en" if loan.borrower.language == "en" else "zh-hans"


def base_context(loan) -> dict:
    return {"borrower_name": loan.borrower.name, "contract_no": loan.masked_contract_no,
            "lender_name": business("LENDER_NAME", ""), "service_phone": conf("SERVICE_PHONE"),
            "pay_url": public_url(conf("PAY_PATH"))}


def _next_open_instalment(loan, after: date | None = None):
    from servicing.models.loans import OPEN_INSTALMENT_STATUSES

    qs = loan.instalments.filter(status__in=OPEN_INSTALMENT_STATUSES)
    if after is not None:
        qs = qs.filter(due_date__gt=after)
    return qs.order_by("due_date").first()


def _payment_context(loan, payment, lang: str) -> dict:
    labels = COMPONENT_LABELS[lang]
    paid = payment.allocations.aggregate(**{c: Sum(c) for c in labels})
    unit = "元" if lang == "zh-hans" else ""
    sep = "，" if lang == "zh-hans" else ", "
    parts = [f"{labels.get(c, c)} {format_amount_grouped(paid[c])}{unit}" for c in labels if paid.get(c)]
    if payment.credited_amount:
        parts.append(f"挂账余额 {format_amount_grouped(payment.credited_amount)}元" if lang == "zh-hans"
                     else f"credit balance {format_amount_grouped(payment.credited_amount)}")
    if loan.status == "settled":
        next_step = "您的贷款已全部结清。" if lang == "zh-hans" else "Your loan is now settled in full."
    else:
        nxt = _next_open_instalment(loan)
        if nxt is None:
            next_step = ""
        elif lang == "zh-hans":
            next_step = f"下期应还 {format_amount_grouped(nxt.total_outstanding)} 元，到期日 {nxt.due_date}。"
        else:
            next_step = f"Next due: CNY {format_amount_grouped(nxt.total_outstanding)} on {nxt.due_date}."
    return {"amount": format_amount_grouped(payment.amount), "value_date": payment.value_date.isoformat(),
            "paid_for": sep.join(parts) or "-", "next_step": next_step}


def _mandate_context(loan, mandate, lang: str) -> dict:
    nxt = _next_open_instalment(loan)
    cancelled = timezone.localdate(mandate.cancelled_at) if mandate.cancelled_at else timezone.localdate()
    return {"account": mandate.masked_account, "cancelled_on": cancelled.isoformat(),
            "next_due_date": nxt.due_date.isoformat() if nxt else "-",
            "next_amount": format_amount_grouped(nxt.total_outstanding) if nxt else "0.00",
            "resign_url": public_url(conf("RESIGN_PATH"))}


PRE_DEBIT_REASONS = {
    "zh-hans": {"no_active_mandate": "没有生效的代扣协议", "mandate_suspended": "代扣协议已暂停",
                "above_single_limit": "应还金额超过代扣单笔限额"},
    "en": {"no_active_mandate": "there is no active direct-debit mandate",
           "mandate_suspended": "the direct-debit mandate is suspended",
           "above_single_limit": "the amount is above the mandate's single-debit limit"},
}


def debit_line(lang: str, *, due_date: str, account: str, will_not_debit: bool = False, reason: str = "",
               how_to_fix: str = "") -> str:
    """The sentence saying whether the debit will happen (the debits pre-due check may say it will not)."""
    if will_not_debit:
        why = PRE_DEBIT_REASONS[lang].get(reason, reason)
        if lang == "zh-hans":
            return f"本期将无法自动扣款（{why}）。{how_to_fix}请于{due_date}前主动还款。"
        return f"This instalment cannot be debited automatically ({why}). {how_to_fix} Please pay by {due_date}."
    if lang == "zh-hans":
        return f"将于{due_date}从账户{account}自动扣款，请确保余额充足。"
    return f"It will be debited from {account} on {due_date}; please keep enough funds."


def _instalment_context(loan, inst, lang: str) -> dict:
    from servicing.models.mandates import MandateStatus

    mandate = loan.mandates.filter(status=MandateStatus.ACTIVE).first()
    return {"amount": format_amount_grouped(inst.total_outstanding), "due_date": inst.due_date.isoformat(),
            "account": mandate.masked_account if mandate else "-"}


def _pre_debit_context(loan, obj, lang: str, on_date, given: dict) -> dict:
    ctx = _instalment_context(loan, obj, lang) if getattr(obj, "_meta", None) and \
        obj._meta.label_lower == "servicing.instalment" else {}
    merged = {**ctx, **given}
    ctx["debit_line"] = debit_line(
        lang, due_date=str(merged.get("due_date", "")), account=str(merged.get("account", "-")),
        will_not_debit=bool(given.get("will_not_debit")), reason=str(given.get("reason", "")),
        how_to_fix=str(given.get("how_to_fix", "")))
    return ctx


def _overdue_context(loan, obj, lang: str, on_date: date | None, given: dict) -> dict:
    """Figures from the loan as of the notice date; a collections case may pass agency/effective_on
    (hand-over notice), which becomes a factual sentence in `extra_note`."""
    from servicing.selectors import live_instalments, outstanding

    overdue = outstanding(live_instalments(loan), overdue_only=True)
    labels = {"principal": "principal", "interest": "interest", "penalty": "penalty", "compound": "compound",
              "fees": "fee"}
    names = COMPONENT_LABELS[lang]
    unit = " 元" if lang == "zh-hans" else ""
    parts = [f"{names[labels[k]]} {format_amount_grouped(v)}{unit}" for k, v in overdue.items() if v]
    note = ""
    if given.get("agency") and given.get("effective_on"):
        note = (f"自{given['effective_on']}起，您的逾期款项将委托{given['agency']}协助催收，"
                f"还款仍请只通过官方渠道。" if lang == "zh-hans" else
                f"From {given['effective_on']}, {given['agency']} will assist us in collecting the overdue amount; "
                f"please still pay only through official channels.")
    return {"dpd": str(loan.dpd), "as_of": (on_date or timezone.localdate()).isoformat(),
            "overdue_total": format_amount_grouped(sum(overdue.values(), Decimal("0"))),
            "overdue_breakdown": ("，" if lang == "zh-hans" else ", ").join(parts) or "-",
            "complaint_phone": conf("COMPLAINT_PHONE"), "hardship_phone": conf("HARDSHIP_PHONE"),
            "extra_note": note}


def _builder(event: str, obj) -> Callable[..., dict] | None:
    """Context builders of the events whose figures come from the servicing core (caller context wins)."""
    label = getattr(getattr(obj, "_meta", None), "label_lower", "")
    if event == "overdue_reminder":
        return _overdue_context
    if event == "pre_debit_reminder":
        return _pre_debit_context
    simple = {
        ("payment_receipt", "servicing.payment"): _payment_context,
        ("mandate_cancelled", "servicing.mandate"): _mandate_context,
    }.get((event, label))
    if simple is None:
        return None
    return lambda loan, obj, lang, on_date, given: simple(loan, obj, lang)


def notice_context(spec, loan, obj, on_date: date | None, given: dict) -> dict:
    """The template variables of a notice, as strings: the loan's base context, the event's builder (figures
    from the servicing core, in the borrower's language), then the caller's context; optional ones defaulted.
    Raises NoticeError when a variable is missing. notify() and the bulk path (bulk_notices) both use it."""
    ctx = base_context(loan)
    builder = _builder(spec.code, obj)
    if builder is not None:
        ctx.update(builder(loan, obj, _lang(loan), on_date, given))
    ctx.update(given)
    for name, default in spec.optional.items():
        ctx.setdefault(name, default)
    missing = [v for v in spec.all_variables if v not in ctx]
    if missing:
        raise NoticeError(f"notify('{spec.code}'): context is missing {', '.join(missing)} "
                          f"(the variables of {spec.code} are: {', '.join(spec.variables)})")
    return {k: str(ctx[k]) for k in spec.all_variables}


def notify(event: str, *, loan, obj: Any = None, context: dict | None = None, on_date: date | None = None,
           channels: list[str] | None = None, collection: bool = False, now: datetime | None = None,
           cause_at: datetime | None = None) -> list:
    """Queue the notice(s) of `event` about `obj` (default: the loan) for the loan's borrower.

    Dedupe key = event + object + on_date (+ channel), so re-running a business day queues nothing new.
    `context` carries the template variables (the core events build theirs from `obj`); `collection=True`
    marks collection messages that count toward the contact caps. `now` decides quiet hours (default:
    the wall clock). Returns the notices created (empty when deduplicated).
    Raises UnknownEvent for an unknown code and NoticeError when a template variable is missing.
    """
    spec = event_spec(event)
    now = now or timezone.now()
    obj = loan if obj is None else obj
    ctx = notice_context(spec, loan, obj, on_date, context or {})
    if channels is None:
        channels = [c for c in spec.channels if c != "email" or loan.borrower.email]
    object_type = obj._meta.label_lower if hasattr(obj, "_meta") else type(obj).__name__.lower()
    return queue(spec=spec, borrower=loan.borrower, loan=loan, object_type=object_type,
                 object_id=getattr(obj, "pk", obj), on_date=on_date or timezone.localdate(now),
                 channels=list(channels), context=ctx, now=now,
                 collection=collection or spec.collection, cause_at=cause_at)


def payment_received(payment) -> None:
    """payment_receipt for any successful payment, debit or active."""
    notify("payment_receipt", loan=payment.loan, obj=payment, on_date=payment.value_date)


def loans_settled(loans: list, last_payment_at: dict[int, datetime | None]) -> None:
    """settlement notice with the certificate (结清证明) for each loan just settled (borrower and product loaded):
    the certificate rows are issued now, their PDFs rendered by a worker after commit; the notice carries the
    public verification link, and the time of the loan's last payment (by loan id) for the settlement-delay KPI."""
    from servicing.services.debits.bulk_notices import notify_many

    from .certificates import issue_certificates, verify_path

    if not loans:
        return
    certs = issue_certificates(loans)
    now = timezone.now()
    notify_many("settlement", [
        (loan, loan, loan.settled_on, {"settled_on": loan.settled_on.isoformat(),
                                       "certificate_no": certs[loan.pk].number,
                                       "verify_url": public_url(verify_path(certs[loan.pk].verification_code))},
         last_payment_at.get(loan.pk) or now)
        for loan in loans])


def mandate_cancelled(mandate) -> None:
    """Consequences (next due date and amount, how to pay, penalty/credit warning, how to re-sign)."""
    notify("mandate_cancelled", loan=mandate.loan, obj=mandate)
