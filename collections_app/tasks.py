"""django-q2 tasks: they take ids and claim with conditional updates, so a retried task does nothing twice."""

from __future__ import annotations

from collections_app.services.contacts import send_automatic_messages


def send_messages(attempt_ids: list[int]) -> int:
    """Hand a chunk of the business day's automatic messages to the notices outbox."""
    return send_automatic_messages(attempt_ids)
