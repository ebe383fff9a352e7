"""Audit trail for money-moving and rule-bending actions: who, what, why."""

from __future__ import annotations

import json
from typing import Any

from django.utils import timezone

from servicing.models import AuditLog
from servicing.sql import copy_rows


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


def record_many(action: str, object_type: str, reasons: dict[int, str], *, actor=None,
                data: dict[int, dict[str, Any]] | None = None) -> int:
    """One audit row per object id with its own reason (and data), written by one COPY (a result file can freeze
    a thousand accounts, settle a cohort or flag every line of a broken file). Returns the rows written."""
    user = actor if getattr(actor, "is_authenticated", False) else None
    label = user.get_username() if user else "system"
    at = timezone.now()
    copy_rows("servicing_auditlog", ("at", "actor_id", "actor_label", "action", "object_type", "object_id", "reason",
                                     "data"),
              ((at, user.pk if user else None, label, action, object_type, str(pk), reason,
                json.dumps({k: str(v) for k, v in (data or {}).get(pk, {}).items()}, ensure_ascii=False))
               for pk, reason in reasons.items()))
    return len(reasons)
