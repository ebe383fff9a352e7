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
