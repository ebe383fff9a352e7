"""Audit trail for money-moving and rule-bending actions: who, what, why."""

from __future__ import annotations

from typing import Any

from servicing.models import AuditLog


def record(action: str, obj: Any, *, actor=None, reason: str = "", actor_label: str = "", **data: Any) -> AuditLog:
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditLog.objects.create(
        actor=user,
        actor_label=actor_label or (user.get_username() if user else "system"),
        action=action,
        object_type=obj._meta.label_lower if hasattr(obj, "_meta") else type(obj).__name__,
        object_id=str(getattr(obj, "pk", obj)),
        reason=reason,
        data={k: str(v) for k, v in data.items()},
    )


def record_many(action: str, object_type: str, reasons: dict[int, str], *, actor=None) -> int:
    """One audit row per object id with its own reason, written in one INSERT (a result file can freeze a thousand
    accounts or flag every line of a broken file). Returns the rows written."""
    user = actor if getattr(actor, "is_authenticated", False) else None
    label = user.get_username() if user else "system"
    rows = [AuditLog(actor=user, actor_label=label, action=action, object_type=object_type, object_id=str(pk),
                     reason=reason, data={}) for pk, reason in reasons.items()]
    return len(AuditLog.objects.bulk_create(rows, batch_size=5000))
