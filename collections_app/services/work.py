"""A collector's work on a case: promises to pay, hardship (deferral, repayment plan), waivers."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext as _

from collections_app.models import (
    CollectionCase,
    EventKind,
    HardshipArrangement,
    PromiseToPay,
    WaiverRequest,
)
from collections_app.rules import conf
from servicing import roles
from servicing.domain.money import ZERO, fen, format_amount_grouped
from servicing.models import Instalment
from servicing.services import audit

from .cases import (
    CollectionsError,
    NotAllowed,
    add_event,
    refresh_pause,
    require_case_access,
    require_supervisor,
)

# --------------------------------------------------------------------------------------------------
# Promises to pay
# --------------------------------------------------------------------------------------------------


@transaction.atomic
def make_promise(*, case: CollectionCase, amount: Decimal | str, due_date: date, actor, on_date: date) -> PromiseToPay:
    """Record a borrower's dated promise (承诺还款); the business day checks it kept or broken."""
    require_case_access(actor, case)
    amount = fen(Decimal(str(amount)))
    if amount <= ZERO:
        raise CollectionsError(_("承诺金额须大于零"))
    if not on_date <= due_date <= on_date + timedelta(days=conf("PROMISE_MAX_DAYS")):
        raise CollectionsError(_("承诺还款日须在 %(n)s 天内") % {"n": conf("PROMISE_MAX_DAYS")})
    case = CollectionCase.objects.select_for_update(of=("self",)).select_related("loan").get(pk=case.pk)
    if not case.is_open:
        raise CollectionsError(_("案件已关闭"))
    promise = PromiseToPay.objects.create(case=case, loan=case.loan, amount=amount, promised_on=on_date,
                                          due_date=due_date, created_by=actor)
    add_event(case, EventKind.PROMISE, on_date=on_date, actor=actor, detail=f"{amount} / {due_date}",
              data={"promise": promise.pk})
    audit.record("collections.promise", promise, actor=actor, amount=amount, due_date=due_date, case=case.pk)
    from notices.services.events import notify

    notify("promise_confirmed", loan=case.loan, obj=promise, on_date=on_date, collection=True,
           context={"promise_amount": format_amount_grouped(amount), "promise_date": due_date.isoformat()})
    return promise


# --------------------------------------------------------------------------------------------------
# Hardship: deferral or repayment plan, requested by anyone on the case, approved by a supervisor
# --------------------------------------------------------------------------------------------------


@transaction.atomic
def request_hardship(*, case: CollectionCase, kind: str, reason: str, actor, on_date: date,
                     n_instalments: int | None = None, defer_to: date | None = None) -> HardshipArrangement:
    """A collector (or the borrower, through the portal, actor=None) asks for hardship help; the case pauses."""
    if actor is not None:
        require_case_access(actor, case)
    if not reason.strip():
        raise CollectionsError(_("请填写困难原因"))
    if kind == HardshipArrangement.Kind.PLAN and not (n_instalments and 1 <= n_instalments <= 36):
        raise CollectionsError(_("分期数须为 1–36"))
    if kind == HardshipArrangement.Kind.DEFERRAL and (defer_to is None or defer_to < on_date):
        raise CollectionsError(_("请填写展期日期"))
    case = CollectionCase.objects.select_for_update().get(pk=case.pk)
    if not case.is_open:
        raise CollectionsError(_("案件已关闭"))
    if HardshipArrangement.objects.filter(case=case, status__in=["requested", "active"]).exists():
        raise CollectionsError(_("该案件已有待审批或执行中的困难救助"))
    arrangement = HardshipArrangement.objects.create(
        case=case, loan_id=case.loan_id, kind=kind, n_instalments=n_instalments, defer_to=defer_to, reason=reason,
        requested_on=on_date, requested_by=actor)
    add_event(case, EventKind.HARDSHIP, on_date=on_date, actor=actor, detail=f"{kind} requested",
              data={"arrangement": arrangement.pk})
    audit.record("collections.hardship_requested", arrangement, actor=actor, reason=reason, kind=kind)
    refresh_pause(case, on_date=on_date, actor=actor)
    return arrangement


@transaction.atomic
def decide_hardship(*, arrangement: HardshipArrangement, approve: bool, actor, on_date: date,
                    reason: str = "") -> HardshipArrangement:
    """A supervisor (not the requester) approves — the loan is re-scheduled through the servicing core —
    or rejects (the case resumes)."""
    from servicing.services.restructure import defer_due_dates, reage_arrears

    require_supervisor(actor)
    arr = HardshipArrangement.objects.select_for_update(of=("self",)).select_related("case", "loan").get(pk=arrangement.pk)
    if arr.status != HardshipArrangement.Status.REQUESTED:
        raise CollectionsError(_("该申请已处理"))
    if arr.requested_by_id is not None and arr.requested_by_id == actor.pk:
        raise NotAllowed(_("申请人不能审批自己的申请"))
    arr.decided_by, arr.decided_on = actor, on_date
    if not approve:
        arr.status = HardshipArrangement.Status.REJECTED
        arr.save(update_fields=["status", "decided_by", "decided_on"])
    else:
        if arr.kind == HardshipArrangement.Kind.PLAN:
            result = reage_arrears(loan=arr.loan, n=arr.n_instalments, as_of=on_date, key=f"plan:{arr.pk}",
                                   user=actor, reason=arr.reason)
            arr.instalment_ids = [i.pk for i in result.instalments]
            arr.arrears = {k: str(v) for k, v in result.arrears.items()}
            arr.entry = result.entry
        else:
            deferred = defer_due_dates(loan=arr.loan, to=arr.defer_to, as_of=on_date, user=actor, reason=arr.reason)
            arr.instalment_ids = [i.pk for i in deferred]
        arr.status = HardshipArrangement.Status.ACTIVE
        arr.save(update_fields=["status", "decided_by", "decided_on", "instalment_ids", "arrears", "entry"])
        from notices.services.events import notify

        notify("plan_confirmed", loan=arr.loan, obj=arr, on_date=on_date, collection=True,
               context={"plan_terms": plan_terms(arr)})
    add_event(arr.case, EventKind.HARDSHIP, on_date=on_date, actor=actor,
              detail=f"{arr.kind} {'approved' if approve else 'rejected'}", data={"arrangement": arr.pk})
    audit.record("collections.hardship_decided", arr, actor=actor, reason=reason, approved=approve, kind=arr.kind)
    refresh_pause(arr.case, on_date=on_date, actor=actor)
    return arr


def plan_terms(arr: HardshipArrangement) -> str:
    """The agreed terms in words, for the borrower's confirmation."""
    if arr.kind == HardshipArrangement.Kind.DEFERRAL:
        return f"逾期款项还款日延至 {arr.defer_to:%Y-%m-%d}"
    insts = list(Instalment.objects.filter(pk__in=arr.instalment_ids).order_by("due_date"))
    total = sum((Decimal(v) for v in arr.arrears.values()), ZERO)
    first = insts[0].due_date.isoformat() if insts else "-"
    return f"逾期金额 {format_amount_grouped(total)} 元分 {arr.n_instalments} 期并入还款计划偿还，首期 {first}"


# --------------------------------------------------------------------------------------------------
# Waivers: maker-checker with per-role limits
# --------------------------------------------------------------------------------------------------


def waiver_limit(user) -> Decimal:
    """The highest single waiver this user may approve (settings COLLECTIONS['WAIVER_LIMITS'])."""
    limits = conf("WAIVER_LIMITS")
    if getattr(user, "is_superuser", False):
        return Decimal(limits.get(roles.ADMIN, "0"))
    names = set(user.groups.values_list("name", flat=True))
    return max((Decimal(v) for role, v in limits.items() if role in names), default=ZERO)


@transaction.atomic
def request_waiver(*, case: CollectionCase, instalment: Instalment, component: str, amount: Decimal | str,
                   reason: str, actor, on_date: date) -> WaiverRequest:
    require_case_access(actor, case)
    amount = fen(Decimal(str(amount)))
    if component not in ("penalty", "compound", "fee", "interest"):
        raise CollectionsError(_("只能减免罚息、复利、费用或利息"))
    if instalment.loan_id != case.loan_id:
        raise CollectionsError(_("期次不属于该贷款"))
    if amount <= ZERO or amount > instalment.outstanding(component):
        raise CollectionsError(_("减免金额须大于零且不超过未还金额"))
    if not reason.strip():
        raise CollectionsError(_("请填写减免原因"))
    req = WaiverRequest.objects.create(case=case, loan_id=case.loan_id, instalment=instalment, component=component,
                                       amount=amount, reason=reason, requested_on=on_date, requested_by=actor)
    add_event(case, EventKind.WAIVER, on_date=on_date, actor=actor, detail=f"{component} {amount} requested",
              data={"waiver": req.pk})
    audit.record("collections.waiver_requested", req, actor=actor, reason=reason, component=component, amount=amount)
    return req


@transaction.atomic
def decide_waiver(*, request: WaiverRequest, approve: bool, actor, on_date: date, reason: str = "") -> WaiverRequest:
    """The checker approves (posting through servicing.services.waivers.waive) or rejects.

    Refused: approving one's own request, or an amount above the approver's role limit.
    """
    from servicing.services.waivers import waive

    req = WaiverRequest.objects.select_for_update(of=("self",)).select_related("loan", "instalment", "requested_by").get(
        pk=request.pk)
    if req.status != WaiverRequest.Status.PENDING:
        raise CollectionsError(_("该申请已处理"))
    if req.requested_by_id == actor.pk:
        audit.record("collections.waiver_refused", req, actor=actor, reason="maker is checker")
        raise NotAllowed(_("减免须由申请人以外的人审批"))
    if approve and req.amount > waiver_limit(actor):
        raise NotAllowed(_("超出审批权限（上限 %(limit)s 元）") % {"limit": waiver_limit(actor)})
    if not approve:
        req.status = WaiverRequest.Status.REJECTED
    else:
        req.entry = waive(loan=req.loan, instalment=req.instalment, component=req.component, amount=req.amount,
                          requested_by=req.requested_by, approved_by=actor, reason=req.reason, value_date=on_date,
                          key=f"waiver-request:{req.pk}")
        req.status = WaiverRequest.Status.APPROVED
    req.decided_by, req.decided_on = actor, on_date
    req.save(update_fields=["status", "decided_by", "decided_on", "entry"])
    if req.case_id:
        add_event(req.case, EventKind.WAIVER, on_date=on_date, actor=actor,
                  detail=f"{req.component} {req.amount} {'approved' if approve else 'rejected'}", data={"waiver": req.pk})
    audit.record("collections.waiver_decided", req, actor=actor, reason=reason, approved=approve)
    return req

