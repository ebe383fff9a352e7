"""Case-level writes: the default ladder, timeline events, pausing, assignment, escalation, agency hand-over."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from collections_app.models import (
    Agency,
    CaseEvent,
    CaseStatus,
    CollectionCase,
    Complaint,
    EscalationRequest,
    EventKind,
    HardshipArrangement,
    PauseReason,
    StrategyStage,
)
from collections_app.rules import conf, message_time
from servicing import roles
from servicing.models import IncidentLoan
from servicing.services import audit


class CollectionsError(ValueError):
    """A collections action that cannot be done as asked; the message says why."""


class NotAllowed(CollectionsError):
    """The acting user may not do this (role, maker-checker, own case)."""


DEFAULT_LADDER = (
    # stage, name, entry_dpd, after_grace, actions, message channels, cadence days, needs approval
    (1, "初步提醒", 1, False, ["sms", "in_app"], ["sms", "in_app"], 7, False),
    (2, "温馨提醒", 4, True, ["sms", "call", "hardship_offer"], ["sms"], 7, False),
    (3, "升级催收", 16, False, ["call", "email", "letter", "supervisor_review"], ["sms", "letter"], 14, False),
    (4, "法律程序", 61, False, ["legal_notice", "lawyer_referral"], ["letter"], 30, True),
)


def ensure_default_ladder(strategy: str = "default") -> list[StrategyStage]:
    """The ladder of collections.md, created once per strategy (supervisors edit it afterwards)."""
    stages = []
    for no, name, entry, after_grace, actions, channels, cadence, approval in DEFAULT_LADDER:
        stage, _ = StrategyStage.objects.get_or_create(strategy=strategy, stage_no=no, defaults={
            "name": name, "entry_dpd": entry, "after_grace": after_grace, "actions": actions,
            "message_channels": channels, "cadence_days": cadence, "requires_approval": approval})
        stages.append(stage)
    return stages


COLLECTOR_PERMS = ["view_collectioncase", "change_collectioncase", "view_caseevent", "view_contactattempt",
                   "add_contactattempt", "view_promisetopay", "add_promisetopay", "view_hardshiparrangement",
                   "add_hardshiparrangement", "view_waiverrequest", "add_waiverrequest", "view_escalationrequest"]


def ensure_roles() -> None:
    """Collector and supervisor permissions on this app's models (the groups come from servicing.roles)."""
    from django.contrib.auth.models import Group, Permission

    roles.ensure_roles()
    mine = Permission.objects.filter(content_type__app_label="collections_app")
    Group.objects.get(name=roles.COLLECTOR).permissions.add(*mine.filter(codename__in=COLLECTOR_PERMS))
    Group.objects.get(name=roles.SUPERVISOR).permissions.add(*mine)


def is_supervisor(user) -> bool:
    return roles.has_role(user, roles.SUPERVISOR, roles.ADMIN)


def can_access_case(user, case: CollectionCase) -> bool:
    """Supervisors (and auditors, read-only) see all cases; a collector only the cases assigned to them."""
    if roles.has_role(user, roles.SUPERVISOR, roles.ADMIN, roles.AUDITOR):
        return True
    return roles.has_role(user, roles.COLLECTOR) and case.assigned_to_id == user.pk


def require_case_access(user, case: CollectionCase) -> None:
    if user is not None and not can_access_case(user, case):
        raise NotAllowed(_("无权处理该案件"))


def require_supervisor(user) -> None:
    if not is_supervisor(user):
        raise NotAllowed(_("需要主管权限"))


def add_event(case: CollectionCase, kind: str, *, on_date: date, at: datetime | None = None, actor=None,
              detail: str = "", data: dict | None = None, dedupe_key: str | None = None) -> CaseEvent:
    return CaseEvent.objects.create(
        case=case, kind=kind, at=at or timezone.now(), business_date=on_date,
        actor=actor if getattr(actor, "is_authenticated", False) else None, detail=str(detail)[:300],
        data={k: str(v) for k, v in (data or {}).items()}, dedupe_key=dedupe_key)


def open_case_for(loan) -> CollectionCase | None:
    return CollectionCase.objects.filter(loan=loan, status__in=[CaseStatus.OPEN, CaseStatus.PAUSED]).first()


def pause_reason_for(case: CollectionCase, on_date: date) -> str:
    """Why a case is paused on `on_date`: an open complaint, a hardship request or plan in force, or the loan inside
    a channel incident's window (the business day's `_pauses` says the same in SQL)."""
    if Complaint.objects.filter(loan_id=case.loan_id, status=Complaint.Status.OPEN).exists():
        return PauseReason.COMPLAINT
    if HardshipArrangement.objects.filter(case=case, status__in=["requested", "active"]).exists():
        return PauseReason.HARDSHIP
    if IncidentLoan.objects.filter(Q(incident__window_end__isnull=True) | Q(incident__window_end__gte=on_date),
                                   loan_id=case.loan_id, incident__window_start__lte=on_date).exists():
        return PauseReason.INCIDENT
    return PauseReason.NONE


def refresh_pause(case: CollectionCase, *, on_date: date, actor=None) -> None:
    """Pause or resume a case after a complaint or hardship change (the business day does this in SQL too)."""
    if not case.is_open:
        return
    reason = pause_reason_for(case, on_date)
    status = CaseStatus.PAUSED if reason else CaseStatus.OPEN
    if (status, reason) == (case.status, case.pause_reason):
        return
    CollectionCase.objects.filter(pk=case.pk).update(status=status, pause_reason=reason)
    add_event(case, EventKind.PAUSED if reason else EventKind.RESUMED, on_date=on_date, actor=actor,
              detail=str(PauseReason(reason).label) if reason else "")
    case.status, case.pause_reason = status, reason


@transaction.atomic
def assign_case(*, case: CollectionCase, collector, actor, on_date: date) -> CollectionCase:
    """A supervisor assigns (or re-assigns) a case to a collector."""
    require_supervisor(actor)
    if not roles.has_role(collector, roles.COLLECTOR):
        raise CollectionsError(_("只能分配给催收员"))
    case = CollectionCase.objects.select_for_update().get(pk=case.pk)
    previous = case.assigned_to_id
    case.assigned_to = collector
    case.save(update_fields=["assigned_to"])
    add_event(case, EventKind.ASSIGNED, on_date=on_date, actor=actor, detail=collector.get_username(),
              data={"from": previous})
    audit.record("collections.case_assigned", case, actor=actor, to=collector.get_username(), previous=previous)
    return case


@transaction.atomic
def request_escalation(*, case: CollectionCase, to_stage: int, actor, on_date: date, reason: str = "") -> EscalationRequest:
    """Ask a supervisor to move a case into an approval stage (the business day does this by itself)."""
    require_case_access(actor, case)
    req, created = EscalationRequest.objects.get_or_create(
        case=case, status=EscalationRequest.Status.PENDING,
        defaults={"to_stage": to_stage, "requested_on": on_date, "requested_by": actor, "reason": reason})
    if created:
        add_event(case, EventKind.ESCALATION, on_date=on_date, actor=actor, detail=f"→ {to_stage}")
        audit.record("collections.escalation_requested", case, actor=actor, reason=reason, to_stage=to_stage)
    return req


@transaction.atomic
def decide_escalation(*, request: EscalationRequest, approve: bool, actor, on_date: date,
                      reason: str = "") -> EscalationRequest:
    """A supervisor approves (the case moves to legal) or rejects. An open complaint blocks approval."""
    require_supervisor(actor)
    req = EscalationRequest.objects.select_for_update(of=("self",)).select_related("case").get(pk=request.pk)
    if req.status != EscalationRequest.Status.PENDING:
        raise CollectionsError(_("该申请已处理"))
    case = CollectionCase.objects.select_for_update().get(pk=req.case_id)
    if approve and case.status == CaseStatus.PAUSED:
        raise CollectionsError(_("案件暂停中（%(r)s），不得升级") % {"r": PauseReason(case.pause_reason).label})
    if approve and not case.is_open:
        raise CollectionsError(_("案件已关闭"))
    req.status = EscalationRequest.Status.APPROVED if approve else EscalationRequest.Status.REJECTED
    req.decided_by, req.decided_on, req.reason = actor, on_date, reason or req.reason
    req.save(update_fields=["status", "decided_by", "decided_on", "reason"])
    if approve:
        old = case.stage
        case.stage, case.stage_since, case.next_action_on = req.to_stage, on_date, on_date
        case.save(update_fields=["stage", "stage_since", "next_action_on"])
        add_event(case, EventKind.STAGE, on_date=on_date, actor=actor, detail=f"{old} → {req.to_stage}",
                  data={"from": old, "to": req.to_stage, "approved_by": actor.get_username()})
    audit.record("collections.escalation_decided", case, actor=actor, reason=reason, approved=approve,
                 to_stage=req.to_stage)
    return req


@transaction.atomic
def hand_over_to_agency(*, case: CollectionCase, agency: Agency, actor, on_date: date) -> CollectionCase:
    """Hand a case to an outside agency on the published list, after notice to the borrower.

    The borrower is told now (through the notices outbox); the agency takes over after the notice period.
    """
    require_supervisor(actor)
    if not (agency.is_active and agency.on_published_list):
        raise CollectionsError(_("委外机构不在公示名单上"))
    case = CollectionCase.objects.select_for_update(of=("self",)).select_related("loan").get(pk=case.pk)
    if not case.is_open:
        raise CollectionsError(_("案件已关闭"))
    effective = on_date + timedelta(days=conf("HANDOVER_NOTICE_DAYS"))
    case.agency, case.agency_from = agency, effective
    case.save(update_fields=["agency", "agency_from"])
    from notices.services.events import notify

    notify("overdue_reminder", loan=case.loan, obj=case, on_date=on_date, collection=True,
           context={"kind": "agency_handover", "agency": agency.name, "effective_on": effective.isoformat()})
    add_event(case, EventKind.HANDOVER, on_date=on_date, at=message_time(on_date), actor=actor,
              detail=f"{agency.name} {effective}", data={"agency": agency.code, "effective_on": effective})
    audit.record("collections.handover", case, actor=actor, agency=agency.code, effective_on=effective)
    return case
