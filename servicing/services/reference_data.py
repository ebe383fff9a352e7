"""Reference data every installation needs: the four products, the bundled bank profiles, the calendar."""

from __future__ import annotations

import json
from pathlib import Path

from servicing.models import BusinessCalendarDay, Channel

from .loans import ensure_default_products

PROFILE_DIR = Path(__file__).resolve().parent.parent / "profiles"


def ensure_channels() -> list[Channel]:
    channels = []
    for path in sorted(PROFILE_DIR.glob("*.json")):
        profile = json.loads(path.read_text(encoding="utf-8"))
        channel, _ = Channel.objects.get_or_create(
            code=profile["code"], defaults={"name": profile["name"], "profile": profile,
                                            "profile_version": profile.get("version", 1)})
        channels.append(channel)
    return channels


def ensure_calendar() -> None:
    if not BusinessCalendarDay.objects.exists():
        from .calendar import seed_calendar

        seed_calendar()


def ensure() -> None:
    ensure_default_products()
    ensure_channels()
    ensure_calendar()
