"""Enqueueing a django-q2 task from inside a transaction that the task must see committed."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction


def enqueue_with_transaction(func: str, *args, **kwargs) -> str | None:
    """With the ORM broker the task row is written in the caller's transaction: it exists exactly when the
    work it follows up was committed. Another broker (Redis) delivers at once, before the commit, so the task
    is sent on commit instead. Returns the task id when known now."""
    from django_q.tasks import async_task

    if "orm" in settings.Q_CLUSTER:
        return async_task(func, *args, **kwargs)
    transaction.on_commit(lambda: async_task(func, *args, **kwargs))
    return None
