"""Reads for collections: the case summary servicing shows, collectors' queues, the complaint clock."""

from __future__ import annotations

from datetime import date

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from servicing import roles
from servicing.models import BusinessDayRun

from .models import OPEN_CASE_STATUSES, CaseEvent, CollectionCase, Complaint

REASON_LABELS = {
    "dpd": _("逾期天数"),
    "amount": _("逾期金额"),
    "broken_promises": _("承诺未兑现"),
    "mandate_cancelled": _("借款人解约代扣"),
    "debit_failures": _("扣款失败"),
    "prior_cures": _("曾自行还清"),
}


def case_summary(loan) -> dict | None:
    """The open case of a loan as servicing's loan_status shows it: {"status", "stage", "bucket"} or None."""
    row = (CollectionCase.objects.filter(loan_id=loan.pk, status__in=OPEN_CASE_STATUSES)
           .values("status", "stage", "bucket").first())
    return dict(row) if row else None


def current_business_date() -> date:
    """The last business date run (what is due is judged by it), else today in Beijing."""
    last = BusinessDayRun.objects.order_by("-business_date").values_list("business_date", flat=True).first()
    return last or timezone.localdate()


def visible_cases(user) -> QuerySet[CollectionCase]:
    """Supervisors, admins and auditors see every case; a collector only the cases assigned to them."""
    qs = CollectionCase.objects.all()
    if roles.has_role(user, roles.SUPERVISOR, roles.ADMIN, roles.AUDITOR):
        return qs
    if roles.has_role(user, roles.COLLECTOR):
        return qs.filter(assigned_to_id=user.pk)
    return qs.none()


def queue(user) -> QuerySet[CollectionCase]:
    """A collector's work queue: their open cases, highest priority first."""
    return (visible_cases(user).filter(status__in=OPEN_CASE_STATUSES)
            .select_related("loan", "borrower").order_by("-priority", "next_action_on", "id"))


def priority_reasons(case: CollectionCase) -> list[tuple[str, int]]:
    """[(label, points)], largest first — shown beside the score."""
    items = sorted(case.priority_reasons.items(), key=lambda kv: -abs(kv[1]))
    return [(str(REASON_LABELS.get(k, k)), v) for k, v in items]


def reasons_text(case: CollectionCase) -> str:
    return "；".join(f"{label} {points:+d}" for label, points in priority_reasons(case))


def timeline(case: CollectionCase) -> QuerySet[CaseEvent]:
    return case.events.select_related("actor").order_by("at", "id")


def overdue_complaints(as_of: date | None = None) -> QuerySet[Complaint]:
    as_of = as_of or current_business_date()
    return Complaint.objects.filter(status=Complaint.Status.OPEN, due_on__lt=as_of)
