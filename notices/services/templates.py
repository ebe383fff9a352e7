"""Notice templates: the seeded defaults, validated saves, and previews on sample data."""

from __future__ import annotations

from notices.catalog import event_spec
from notices.defaults import default_templates
from notices.models import NoticeTemplate

from .templating import render, validate


def ensure_default_templates() -> int:
    """Create the default wording where missing (never overwrites a staff edit). Returns rows created."""
    existing = set(NoticeTemplate.objects.values_list("event", "channel", "language"))
    new = [NoticeTemplate(**row) for row in default_templates()
           if (row["event"], row["channel"], row["language"]) not in existing]
    NoticeTemplate.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


def save_template(*, event: str, channel: str, language: str, subject: str, body: str, user=None) -> NoticeTemplate:
    """Validate then store; a template using a variable the event does not provide is refused here."""
    validate(event, subject, body)
    tpl, _ = NoticeTemplate.objects.update_or_create(
        event=event, channel=channel, language=language,
        defaults={"subject": subject, "body": body, "updated_by": user if getattr(user, "is_authenticated", False)
                  else None})
    return tpl


def preview(event: str, subject: str, body: str) -> tuple[str, str]:
    """The template rendered with the event's sample data."""
    validate(event, subject, body)
    ctx = event_spec(event).sample_context()
    return render(subject, ctx), render(body, ctx)
