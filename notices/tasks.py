"""django-q2 entry points. Tasks take ids, re-check state and claim with conditional updates: delivery is
at-least-once, so each may run twice or in parallel without effect."""

from __future__ import annotations

from django.utils import timezone


def dispatch_due_notices(chunk: int | None = None) -> dict:
    """Send due notices in chunks; if the time budget ran out with more due, enqueue a follow-up."""
    from notices.services.dispatch import dispatch_due, due_count

    stats = dispatch_due(chunk=chunk)
    if not stats.quiet and stats.claimed and due_count(timezone.now()):
        from django_q.tasks import async_task

        async_task("notices.tasks.dispatch_due_notices", chunk, group="notices", task_name="notices.dispatch")
    return stats.as_dict()


def render_certificate(certificate_id: int) -> bool:
    from notices.services.certificates import render_certificate_pdf

    return render_certificate_pdf(certificate_id)


def render_certificates(certificate_ids: list[int]) -> int:
    """A group of the certificates a cohort's settlement issued at once (certificates.RENDER_GROUP)."""
    from notices.services.certificates import render_certificate_pdf

    return sum(1 for pk in certificate_ids if render_certificate_pdf(pk))


def render_pending_certificates() -> int:
    """Safety net: certificates whose render task was lost (enqueue failed, worker killed)."""
    from notices.models import CertificateStatus, SettlementCertificate
    from notices.services.certificates import render_certificate_pdf

    ids = SettlementCertificate.objects.filter(status=CertificateStatus.PENDING).values_list("pk", flat=True)[:200]
    return sum(1 for pk in list(ids) if render_certificate_pdf(pk))


def refresh_settlement_kpi(days: int = 7) -> int:
    from datetime import timedelta

    from notices.services.kpi import refresh_settlement_kpi as refresh

    today = timezone.localdate()
    return refresh(today - timedelta(days=days), today)


SCHEDULES = [
    # name, func, minutes
    ("notices.dispatch", "notices.tasks.dispatch_due_notices", 1),
    ("notices.render_pending_certificates", "notices.tasks.render_pending_certificates", 10),
    ("notices.refresh_settlement_kpi", "notices.tasks.refresh_settlement_kpi", 60),
]


def ensure_schedules() -> list:
    """Create (or update) the periodic django-q2 schedules; idempotent."""
    from django_q.models import Schedule

    out = []
    for name, func, minutes in SCHEDULES:
        sched, _ = Schedule.objects.update_or_create(
            name=name, defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1})
        out.append(sched)
    return out


__all__ = ["dispatch_due_notices", "ensure_schedules", "refresh_settlement_kpi", "render_certificate", "render_certificates",
           "render_pending_certificates"]
