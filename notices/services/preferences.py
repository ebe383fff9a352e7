"""Borrower channel preferences. The inbox cannot be switched off; service notices ignore opt-outs."""

from __future__ import annotations

from notices.models import Channel, ChannelPreference
from servicing.services import audit


class PreferenceError(ValueError):
    pass


def set_channel_opt_out(*, borrower, channel: str, opted_out: bool, user=None) -> ChannelPreference:
    """Record the borrower's choice (auditable: it changes what the lender may send)."""
    if channel not in Channel.values:
        raise PreferenceError(f"channel: '{channel}' is not one of {', '.join(Channel.values)}")
    if channel == Channel.IN_APP and opted_out:
        raise PreferenceError("channel: the self-service inbox cannot be switched off")
    pref, _ = ChannelPreference.objects.update_or_create(borrower=borrower, channel=channel,
                                                         defaults={"opted_out": opted_out})
    audit.record("notices.preference", pref, actor=user, channel=channel, opted_out=opted_out)
    return pref
