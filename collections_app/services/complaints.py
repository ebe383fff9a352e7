"""Complaints (投诉): filed by staff or the borrower, answered within the legal clock.

While a complaint about a loan is open, its collection case is paused (no escalation, no reminders).
The handler must not be the collector involved.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext as _

from collections_app.models import CollectionCase, Complaint, EventKind, RootCause
from collections_app.rules import conf
from servicing.services import audit

from .cases import CollectionsError, NotAllowed, add_event, open_case_for, refresh_pause, require_supervisor


def _reference(on_date: date) -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT COUNT(*) + 1 FROM collections_app_complaint WHERE filed_on = %s", [on_date])
        (n,) = cur.fetchone()
    return f"TS{on_date:%Y%m%d}{n:05d}"


def _check_handler(handler, involved_collector_id: int | None) -> None:
    if handler is not None and involved_collector_id is not None and handler.pk == involved_collector_id:
        raise NotAllowed(_("处理人不能是涉及的催收员"))


@transaction.atomic
def file_complaint(*, loan, subject: str, description: str, on_date: date, filed_by=None, source: str = "staff",
                   handler=None, root_cause: str = "") -> Complaint:
    """File a complaint (staff from a call, or the borrower in self-service with filed_by=None, source=portal)."""
    if not subject.strip() or not description.strip():
        raise CollectionsError(_("请填写投诉主题和内容"))
    case = open_case_for(loan)
    involved = case.assigned_to_id if case else None
    _check_handler(handler, involved)
    days = conf("COMPLAINT_DAYS")[0]
    for attempt in range(5):  # the reference is per-day sequential; retry on a concurrent filer's race
        try:
            with transaction.atomic():
                complaint = Complaint.objects.create(
                    reference=_reference(on_date) if attempt == 0 else f"{_reference(on_date)}-{attempt}",
                    loan=loan, borrower_id=loan.borrower_id, case=case, source=source,
                    subject=subject, description=description, filed_on=on_date, filed_by=filed_by,
                    involved_collector_id=involved, handler=handler, due_on=on_date + timedelta(days=days),
                    root_cause=root_cause)
            break
        except IntegrityError:  # a concurrent filer took the reference: try the next one
            if attempt == 4:
                raise
    if case is not None:
        add_event(case, EventKind.COMPLAINT, on_date=on_date, actor=filed_by, detail=f"{complaint.reference} {subject}",
                  data={"complaint": complaint.pk})
        refresh_pause(case, on_date=on_date, actor=filed_by)
    audit.record("collections.complaint_filed", complaint, actor=filed_by, source=source, loan=loan.contract_no)
    from notices.services.events import notify

    notify("complaint_received", loan=loan, obj=complaint, on_date=on_date,
           context={"reference": complaint.reference, "deadline": complaint.due_on.isoformat()})
    return complaint


@transaction.atomic
def assign_handler(*, complaint: Complaint, handler, actor) -> Complaint:
    require_supervisor(actor)
    complaint = Complaint.objects.select_for_update().get(pk=complaint.pk)
    _check_handler(handler, complaint.involved_collector_id)
    complaint.handler = handler
    complaint.save(update_fields=["handler"])
    audit.record("collections.complaint_handler", complaint, actor=actor, handler=handler.get_username())
    return complaint


@transaction.atomic
def extend_complaint(*, complaint: Complaint, actor, reason: str) -> Complaint:
    """15 → 30 days by the handler (or a supervisor); 30 → 60 only with a supervisor's approval."""
    complaint = Complaint.objects.select_for_update().get(pk=complaint.pk)
    days = conf("COMPLAINT_DAYS")
    if complaint.status != Complaint.Status.OPEN or complaint.extensions >= len(days) - 1:
        raise CollectionsError(_("不能再延期"))
    if not reason.strip():
        raise CollectionsError(_("延期须说明原因"))
    if complaint.extensions == 0:
        if complaint.handler_id != actor.pk:
            require_supervisor(actor)
    else:
        require_supervisor(actor)
    complaint.extensions += 1
    complaint.due_on = complaint.filed_on + timedelta(days=days[complaint.extensions])
    complaint.save(update_fields=["extensions", "due_on"])
    audit.record("collections.complaint_extended", complaint, actor=actor, reason=reason, due_on=complaint.due_on)
    return complaint


@transaction.atomic
def answer_complaint(*, complaint: Complaint, answer: str, root_cause: str, actor, on_date: date) -> Complaint:
    """The handler answers (sent to the borrower through the notices outbox); the complaint closes and the
    case resumes if nothing else holds it."""
    complaint = Complaint.objects.select_for_update(of=("self",)).select_related("loan").get(pk=complaint.pk)
    if complaint.status != Complaint.Status.OPEN:
        raise CollectionsError(_("该投诉已答复"))
    _check_handler(actor, complaint.involved_collector_id)
    if complaint.handler_id and complaint.handler_id != actor.pk:
        require_supervisor(actor)
    if not answer.strip() or root_cause not in RootCause.values or not root_cause:
        raise CollectionsError(_("请填写答复与根因"))
    complaint.status, complaint.answer, complaint.root_cause = Complaint.Status.ANSWERED, answer, root_cause
    complaint.answered_on, complaint.answered_late = on_date, on_date > complaint.due_on
    complaint.handler_id = complaint.handler_id or actor.pk
    complaint.save(update_fields=["status", "answer", "root_cause", "answered_on", "answered_late", "handler"])
    audit.record("collections.complaint_answered", complaint, actor=actor, root_cause=root_cause,
                 late=complaint.answered_late)
    from notices.services.events import notify

    notify("complaint_answered", loan=complaint.loan, obj=complaint, on_date=on_date,
           context={"reference": complaint.reference, "answer": answer})
    if complaint.case_id:
        case = CollectionCase.objects.get(pk=complaint.case_id)
        add_event(case, EventKind.COMPLAINT, on_date=on_date, actor=actor, detail=f"{complaint.reference} answered",
                  data={"complaint": complaint.pk})
        refresh_pause(case, on_date=on_date, actor=actor)
    return complaint
