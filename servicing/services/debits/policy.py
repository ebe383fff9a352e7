"""Result categories and their default actions (debits.md), overridable per product (`retry_policy`).

A product's `retry_policy` JSON may override any category's keys, e.g.
``{"insufficient_funds": {"retry_days": [1, 2, 5], "max_retries": 3}}``.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.utils.translation import gettext_lazy as _

CATEGORIES = (
    "insufficient_funds", "limit_daily_monthly", "limit_single", "account_state", "identity_mismatch",
    "mandate_invalid", "card_invalid", "unknown", "debited_not_posted", "channel_down", "technical",
    "unclassified",
)
INSTITUTION_SIDE = ("channel_down", "technical", "unknown")  # count toward incident detection

# action: retry | stop | suspend | cancel | wait | post
# retry: "days" (offsets from the first failure), "next_day_then_next_month", "next_working_day"
DEFAULT_POLICY: dict[str, dict] = {
    "insufficient_funds": {"action": "retry", "retry": "days", "retry_days": [1, 3, 7], "max_retries": 3,
                           "notify": "first"},
    "limit_daily_monthly": {"action": "retry", "retry": "next_day_then_next_month", "max_retries": 2,
                            "notify": "first"},
    "limit_single": {"action": "stop", "notify": "always"},
    "account_state": {"action": "suspend", "notify": "always"},
    "identity_mismatch": {"action": "suspend", "notify": "always"},
    "mandate_invalid": {"action": "cancel", "notify": "always"},
    "card_invalid": {"action": "cancel", "notify": "always"},
    "unknown": {"action": "wait", "notify": "never", "exception_after_working_days": 2},
    "debited_not_posted": {"action": "post", "notify": "never"},
    "channel_down": {"action": "retry", "retry": "next_working_day", "max_retries": 5, "notify": "never"},
    "technical": {"action": "stop", "notify": "never", "alert_ops": True},
    "unclassified": {"action": "stop", "notify": "always"},
}

PLAIN_REASON = {
    "insufficient_funds": _("扣款账户余额不足"),
    "limit_daily_monthly": _("超过银行卡日/月累计限额"),
    "limit_single": _("超过银行卡单笔扣款限额"),
    "account_state": _("扣款账户状态异常（冻结、挂失或销户）"),
    "identity_mismatch": _("扣款账户户名与借款人不符"),
    "mandate_invalid": _("代扣协议无效或已解约"),
    "card_invalid": _("银行卡无效"),
    "unknown": _("银行处理中，结果未明"),
    "debited_not_posted": _("银行已扣款"),
    "channel_down": _("银行系统维护，暂时无法扣款"),
    "technical": _("系统技术原因"),
    "unclassified": _("银行返回其他原因"),
}

# what happens next, in the borrower's language (debit_failed's next_step; the template adds the full stop)
NEXT_STEP = {
    "zh-hans": {"retry": "我们将于 {date} 再次尝试扣款，您也可以通过 {url} 主动还款",
                "last": "本期不再自动扣款，请通过 {url} 主动还款，逾期将产生罚息并影响征信"},
    "en": {"retry": "We will try the debit again on {date}; you can also pay now at {url}",
           "last": "There will be no further automatic debit for this instalment; please pay at {url}, as a late "
                   "payment incurs penalty interest and is reported to the credit bureau"},
}

ACTION_TEXT = {
    "retry": "retry scheduled", "stop": "no retry", "suspend": "mandate suspended, no retry",
    "cancel": "mandate cancelled, no retry", "wait": "await result", "post": "posted as paid",
}


def policy_for(product, category: str) -> dict:
    base = dict(DEFAULT_POLICY.get(category, DEFAULT_POLICY["unclassified"]))
    override = (product.retry_policy or {}).get(category) if product is not None else None
    if isinstance(override, dict):
        base.update(override)
    return base


def next_retry(policy: dict, *, first_failed_on: date, failed_on: date, retries_used: int) -> date | None:
    """The date of the next retry after a failure on `failed_on`, or None when no retry is due."""
    if policy.get("action") != "retry" or retries_used >= int(policy.get("max_retries", 0)):
        return None
    kind = policy.get("retry", "days")
    if kind == "days":
        days = policy.get("retry_days") or [1]
        offset = days[min(retries_used, len(days) - 1)]
        return max(first_failed_on + timedelta(days=int(offset)), failed_on + timedelta(days=1))
    from servicing.services.calendar import next_working_day

    if kind == "next_day_then_next_month":
        if retries_used == 0:
            return failed_on + timedelta(days=1)
        first_next_month = (failed_on.replace(day=1) + timedelta(days=32)).replace(day=1)
        return next_working_day(first_next_month, include_self=True)
    return next_working_day(failed_on)


def should_notify(policy: dict, failures_before: int) -> bool:
    mode = policy.get("notify", "always")
    return mode == "always" or (mode == "first" and failures_before == 0)
