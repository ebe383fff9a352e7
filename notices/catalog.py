"""The events that notify the borrower (notices.md): their variables, channels, rules and sample data.

Event codes are public. Each event declares the template variables it provides; a template may use only
those (checked when staff save it), and `notify` refuses a context that lacks one (checked when the
event is raised, not at 3 a.m. in a worker).
"""

from __future__ import annotations

from dataclasses import dataclass, field

COMMON_VARIABLES = ("borrower_name", "contract_no", "lender_name", "service_phone", "pay_url")

COMMON_SAMPLE = {
    "borrower_name": "张三",
    "contract_no": "HT20****0001",
    "lender_name": "瑞沛消费金融有限公司",
    "service_phone": "400-800-1234",
    "pay_url": "https://repaydesk.example/pay",
}


@dataclass(frozen=True)
class EventSpec:
    code: str
    channels: tuple[str, ...]  # default channels (email only when the borrower has an address)
    variables: tuple[str, ...]  # event-specific, on top of COMMON_VARIABLES
    sample: dict = field(default_factory=dict)
    mandatory: bool = True  # a service notice the borrower cannot opt out of
    collection: bool = False  # counts toward the contact caps
    optional: dict = field(default_factory=dict)  # variables with a default when the caller omits them

    @property
    def all_variables(self) -> tuple[str, ...]:
        return COMMON_VARIABLES + self.variables + tuple(self.optional)

    def sample_context(self) -> dict:
        return {**COMMON_SAMPLE, **self.optional, **self.sample}


EVENTS: dict[str, EventSpec] = {s.code: s for s in [
    EventSpec("pre_debit_reminder", ("sms", "in_app"), ("amount", "due_date", "account"),
              {"amount": "1,234.50", "due_date": "2026-03-15", "account": "6222 **** **** 1234",
               "debit_line": "将于2026-03-15从账户6222 **** **** 1234自动扣款，请确保余额充足。"},
              mandatory=False, optional={"debit_line": ""}),
    EventSpec("payment_receipt", ("sms", "in_app", "email"),
              ("amount", "value_date", "paid_for", "next_step"),
              {"amount": "1,234.50", "value_date": "2026-03-15", "paid_for": "本金 1,000.00 元，利息 234.50 元",
               "next_step": "下期应还 1,234.50 元，到期日 2026-04-15"}, mandatory=False),
    EventSpec("debit_failed", ("sms", "in_app"), ("amount", "reason", "next_step"),
              {"amount": "1,234.50", "reason": "账户余额不足", "next_step": "我们将于 2026-03-17 再次尝试扣款"}),
    EventSpec("debit_missed", ("sms", "in_app"), ("amount", "due_date", "reason", "pay_by"),
              {"amount": "1,234.50", "due_date": "2026-03-15", "reason": "银行未处理扣款", "pay_by": "2026-03-18"}),
    EventSpec("mandate_cancelled", ("sms", "in_app", "email"),
              ("account", "cancelled_on", "next_due_date", "next_amount", "resign_url"),
              {"account": "6222 **** **** 1234", "cancelled_on": "2026-03-10", "next_due_date": "2026-03-15",
               "next_amount": "1,234.50", "resign_url": "https://repaydesk.example/mandate"}),
    EventSpec("overdue_reminder", ("sms", "in_app"),
              ("dpd", "as_of", "overdue_total", "overdue_breakdown", "complaint_phone", "hardship_phone"),
              {"dpd": "5", "as_of": "2026-03-20", "overdue_total": "1,260.10", "extra_note": "",
               "overdue_breakdown": "本金 1,000.00 元，利息 234.50 元，罚息 25.60 元",
               "complaint_phone": "400-800-1235", "hardship_phone": "400-800-1236"},
              mandatory=False, collection=True, optional={"extra_note": ""}),
    EventSpec("incident_apology", ("sms", "in_app"), ("incident_summary", "what_to_do"),
              {"incident_summary": "3 月 15 日银行系统故障导致扣款未能执行", "what_to_do": "无需操作，我们将于 3 月 17 日重新扣款"}),
    EventSpec("promise_confirmed", ("sms", "in_app"), ("promise_amount", "promise_date"),
              {"promise_amount": "1,260.10", "promise_date": "2026-03-25"}, collection=True),
    EventSpec("plan_confirmed", ("sms", "in_app", "email"), ("plan_terms",),
              {"plan_terms": "分 6 期偿还逾期金额，每期 210.02 元，首期 2026-04-15"}),
    EventSpec("settlement", ("sms", "in_app", "email"), ("settled_on", "certificate_no", "verify_url"),
              {"settled_on": "2026-03-15", "certificate_no": "JQ20260315000001-1",
               "verify_url": "https://repaydesk.example/verify/ABCD2345EFGH"}),
    EventSpec("complaint_received", ("sms", "in_app"), ("reference", "deadline"),
              {"reference": "TS2026031500012", "deadline": "2026-03-30"}),
    EventSpec("complaint_answered", ("sms", "in_app", "email"), ("reference", "answer"),
              {"reference": "TS2026031500012", "answer": "经核实，已为您减免罚息 25.60 元。"}),
]}


class UnknownEvent(ValueError):
    """An event code that notices.md does not define."""


def event_spec(code: str) -> EventSpec:
    try:
        return EVENTS[code]
    except KeyError:
        raise UnknownEvent(f"event: '{code}' is not a notice event; known events: {', '.join(EVENTS)}") from None
