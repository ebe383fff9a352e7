"""The contact rules the law sets (collections.md), checked when a contact is made.

`check_contact` is pure reading: it says whether a contact may be made at `at` and, if not, which rule
refuses it. `collections_app.services.contacts.record_contact` is the one place that calls it and logs
the result; every path (a collector's call, the business day's messages, agencies) goes through there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils.translation import gettext as _

from .models import FAILED_OUTCOMES, MESSAGE_CHANNELS, Channel, ContactAttempt, Outcome, Target

DEFAULTS = {
    "QUIET_START": "22:00",
    "QUIET_END": "08:00",
    "CONTACT_TIME_ZONE": "Asia/Shanghai",
    "MAX_CONNECTED_CALLS_PER_DAY": 3,
    "MAX_UNANSWERED_DIALS_PER_NUMBER_PER_DAY": 6,
    "MAX_MESSAGES_PER_DAY": 2,
    "MAX_MESSAGES_PER_WEEK": 6,
    "UNREACHABLE_AFTER_FAILED_ATTEMPTS": 3,
    "UNREACHABLE_WINDOW_DAYS": 7,
    "MESSAGE_TIME": "09:00",
    "ASSIGNMENT": "bucket",
    "PROMISE_MAX_DAYS": 14,
    "WAIVER_LIMITS": {"collector": "0", "supervisor": "5000", "admin": "50000"},
    "COMPLAINT_DAYS": (15, 30, 60),
    "HANDOVER_NOTICE_DAYS": 3,
    "INLINE_MESSAGE_LIMIT": 2000,
    "MESSAGE_CHUNK": 5000,
}

# rule codes (stable: they are logged and shown)
QUIET_HOURS = "quiet_hours"
CONNECTED_CALLS = "daily_connected_calls"
UNANSWERED_DIALS = "daily_unanswered_dials"
MESSAGES_DAY = "daily_messages"
MESSAGES_WEEK = "weekly_messages"
THIRD_PARTY_REACHABLE = "third_party_borrower_reachable"
THIRD_PARTY_REFUSED = "third_party_refused"
THIRD_PARTY_DEBT = "third_party_debt_details"
IDENTITY = "identity_not_stated"


def conf(key: str):
    return getattr(settings, "COLLECTIONS", {}).get(key, DEFAULTS[key])


def tz() -> ZoneInfo:
    return ZoneInfo(conf("CONTACT_TIME_ZONE"))


def _hm(value: str) -> time:
    h, m = value.split(":")
    return time(int(h), int(m))


def local(at: datetime) -> datetime:
    return at.astimezone(tz())


def in_quiet_hours(at: datetime) -> bool:
    """22:00 ≤ t or t < 08:00 local: 21:59 is allowed, 22:00 refused, 08:00 allowed."""
    t = local(at).time()
    start, end = _hm(conf("QUIET_START")), _hm(conf("QUIET_END"))
    if start > end:  # window spans midnight
        return t >= start or t < end
    return start <= t < end


def message_time(d: date) -> datetime:
    """When the business day's automatic messages for date `d` are scheduled (local)."""
    return datetime.combine(d, _hm(conf("MESSAGE_TIME")), tzinfo=tz())


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    rule: str = ""
    message: str = ""

    def __bool__(self) -> bool:
        return self.allowed


OK = Verdict(True)


def _day_rows(borrower_id: int, day: date):
    return ContactAttempt.objects.filter(borrower_id=borrower_id, local_date=day, allowed=True)


def message_counts(borrower_id: int, day: date) -> tuple[int, int]:
    """Collection messages to a borrower on `day` and in the 7 days ending on it.

    The notices outbox will expose its own count (notices.selectors.collection_message_count); until it
    does, our own ContactAttempt rows are the record (every automatic message is logged here first).
    """
    try:
        from notices.selectors import collection_message_count  # type: ignore[attr-defined]
    except ImportError:
        collection_message_count = None
    if collection_message_count is not None:
        return (collection_message_count(borrower_id, day, day),
                collection_message_count(borrower_id, day - timedelta(days=6), day))
    qs = ContactAttempt.objects.filter(borrower_id=borrower_id, allowed=True, channel__in=MESSAGE_CHANNELS)
    return (qs.filter(local_date=day).count(),
            qs.filter(local_date__gte=day - timedelta(days=6), local_date__lte=day).count())


def borrower_unreachable(borrower_id: int, at: datetime) -> bool:
    """At least N failed call attempts to the borrower in the window, and none connected since."""
    since = local(at).date() - timedelta(days=conf("UNREACHABLE_WINDOW_DAYS") - 1)
    calls = ContactAttempt.objects.filter(borrower_id=borrower_id, target=Target.BORROWER, channel=Channel.CALL,
                                          allowed=True, local_date__gte=since, at__lte=at)
    last_connected = calls.filter(outcome=Outcome.CONNECTED).order_by("-at").values_list("at", flat=True).first()
    failed = calls.filter(outcome__in=FAILED_OUTCOMES)
    if last_connected is not None:
        failed = failed.filter(at__gt=last_connected)
    return failed.count() >= conf("UNREACHABLE_AFTER_FAILED_ATTEMPTS")


def check_contact(*, borrower_id: int, channel: str, at: datetime, target: str = Target.BORROWER,
                  number: str = "", contact_person=None, case_id: int | None = None,
                  identity_stated: bool = True, discloses_debt: bool = False) -> Verdict:
    """May this contact be made at `at`? The first rule that refuses it is named."""
    day = local(at).date()
    if in_quiet_hours(at):
        return Verdict(False, QUIET_HOURS, _("北京时间 %(start)s 至 %(end)s 不得联系") % {
            "start": conf("QUIET_START"), "end": conf("QUIET_END")})
    if target != Target.BORROWER:
        if contact_person is not None and contact_person.refused:
            return Verdict(False, THIRD_PARTY_REFUSED, _("该联系人已拒绝再被联系"))
        if discloses_debt:
            return Verdict(False, THIRD_PARTY_DEBT, _("不得向第三人透露欠款金额或逾期情况"))
        if target == Target.CONTACT and not borrower_unreachable(borrower_id, at):
            return Verdict(False, THIRD_PARTY_REACHABLE, _("借款人未失联（连续 %(n)s 次联系失败）前不得联系紧急联系人")
                           % {"n": conf("UNREACHABLE_AFTER_FAILED_ATTEMPTS")})
    if channel == Channel.CALL:
        connected = _day_rows(borrower_id, day).filter(channel=Channel.CALL, outcome=Outcome.CONNECTED).count()
        if connected >= conf("MAX_CONNECTED_CALLS_PER_DAY"):
            return Verdict(False, CONNECTED_CALLS, _("今日已接通 %(n)s 次，已达上限") % {"n": connected})
        if number:
            unanswered = (ContactAttempt.objects.filter(number=number, local_date=day, allowed=True,
                                                        channel=Channel.CALL, outcome__in=FAILED_OUTCOMES).count())
            if unanswered >= conf("MAX_UNANSWERED_DIALS_PER_NUMBER_PER_DAY"):
                return Verdict(False, UNANSWERED_DIALS, _("该号码今日未接通拨打已达 %(n)s 次") % {"n": unanswered})
    if channel in MESSAGE_CHANNELS and target == Target.BORROWER:
        per_day, per_week = message_counts(borrower_id, day)
        if per_day >= conf("MAX_MESSAGES_PER_DAY"):
            return Verdict(False, MESSAGES_DAY, _("今日催收消息已达上限"))
        if per_week >= conf("MAX_MESSAGES_PER_WEEK"):
            return Verdict(False, MESSAGES_WEEK, _("本周催收消息已达上限"))
    if channel in (Channel.CALL, Channel.VISIT) and not identity_stated and case_id is not None:
        spoke_before = ContactAttempt.objects.filter(case_id=case_id, allowed=True, identity_stated=True,
                                                     outcome=Outcome.CONNECTED).exists()
        if not spoke_before:
            return Verdict(False, IDENTITY, _("首次联系须表明催收方身份（贷款机构及委外机构）"))
    return OK
