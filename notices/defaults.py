"""Seeded default wording (plain data, also used by the data migration). Staff edit the copies in the admin.

Per event and language: a subject, a short text (SMS) and a long text (e-mail, in-app, letter).
"""

from __future__ import annotations

SIGN = {"zh-hans": "【{{ lender_name }}】", "en": "[{{ lender_name }}] "}

TEXTS: dict[str, dict[str, tuple[str, str, str]]] = {
    "pre_debit_reminder": {
        "zh-hans": (
            "还款提醒",
            "尊敬的{{ borrower_name }}，您的合同{{ contract_no }}本期应还{{ amount }}元，到期日{{ due_date }}。"
            "{{ debit_line }}主动还款：{{ pay_url }}",
            "尊敬的{{ borrower_name }}：\n您的合同{{ contract_no }}本期应还{{ amount }}元，到期日{{ due_date }}。\n"
            "{{ debit_line }}\n如需主动还款，请访问 {{ pay_url }} 或致电 {{ service_phone }}。",
        ),
        "en": (
            "Repayment reminder",
            "Dear {{ borrower_name }}, CNY {{ amount }} for contract {{ contract_no }} is due on {{ due_date }}. "
            "{{ debit_line }} Pay now: {{ pay_url }}",
            "Dear {{ borrower_name }},\nThe instalment of CNY {{ amount }} for contract {{ contract_no }} is due on "
            "{{ due_date }}.\n{{ debit_line }}\nTo pay yourself, visit {{ pay_url }} or call {{ service_phone }}.",
        ),
    },
    "payment_receipt": {
        "zh-hans": (
            "还款成功",
            "尊敬的{{ borrower_name }}，您于{{ value_date }}还款{{ amount }}元已入账（合同{{ contract_no }}）。"
            "{{ next_step }}",
            "尊敬的{{ borrower_name }}：\n您于{{ value_date }}的还款{{ amount }}元已入账，合同{{ contract_no }}。\n"
            "本次冲抵：{{ paid_for }}。\n{{ next_step }}\n如有疑问请致电 {{ service_phone }}。",
        ),
        "en": (
            "Payment received",
            "Dear {{ borrower_name }}, your payment of CNY {{ amount }} on {{ value_date }} for contract "
            "{{ contract_no }} has been received. {{ next_step }}",
            "Dear {{ borrower_name }},\nYour payment of CNY {{ amount }} on {{ value_date }} for contract "
            "{{ contract_no }} has been received.\nIt paid: {{ paid_for }}.\n{{ next_step }}\n"
            "Questions: {{ service_phone }}.",
        ),
    },
    "debit_failed": {
        "zh-hans": (
            "扣款未成功",
            "尊敬的{{ borrower_name }}，合同{{ contract_no }}本期{{ amount }}元扣款未成功：{{ reason }}。"
            "{{ next_step }}。立即还款：{{ pay_url }}",
            "尊敬的{{ borrower_name }}：\n合同{{ contract_no }}本期应还{{ amount }}元扣款未成功，原因：{{ reason }}。\n"
            "{{ next_step }}。\n为避免产生罚息，您可立即还款：{{ pay_url }}。客服电话 {{ service_phone }}。",
        ),
        "en": (
            "Debit unsuccessful",
            "Dear {{ borrower_name }}, the debit of CNY {{ amount }} for contract {{ contract_no }} failed: "
            "{{ reason }}. {{ next_step }}. Pay now: {{ pay_url }}",
            "Dear {{ borrower_name }},\nThe debit of CNY {{ amount }} for contract {{ contract_no }} did not succeed. "
            "Reason: {{ reason }}.\n{{ next_step }}.\nTo avoid penalty interest you can pay now: {{ pay_url }}. "
            "Call {{ service_phone }} with questions.",
        ),
    },
    "debit_missed": {
        "zh-hans": (
            "今日扣款未执行",
            "尊敬的{{ borrower_name }}，合同{{ contract_no }}于{{ due_date }}应扣{{ amount }}元未执行（{{ reason }}），"
            "请于{{ pay_by }}前主动还款：{{ pay_url }}",
            "尊敬的{{ borrower_name }}：\n合同{{ contract_no }}于{{ due_date }}应扣款{{ amount }}元，但扣款未执行，"
            "原因：{{ reason }}。\n请于{{ pay_by }}前通过 {{ pay_url }} 主动还款。客服电话 {{ service_phone }}。",
        ),
        "en": (
            "Today's debit did not happen",
            "Dear {{ borrower_name }}, the debit of CNY {{ amount }} due {{ due_date }} for contract "
            "{{ contract_no }} did not happen ({{ reason }}). Please pay by {{ pay_by }}: {{ pay_url }}",
            "Dear {{ borrower_name }},\nThe debit of CNY {{ amount }} due on {{ due_date }} for contract "
            "{{ contract_no }} did not happen. Reason: {{ reason }}.\nPlease pay by {{ pay_by }} at {{ pay_url }}. "
            "Questions: {{ service_phone }}.",
        ),
    },
    "mandate_cancelled": {
        "zh-hans": (
            "代扣协议已解约",
            "尊敬的{{ borrower_name }}，合同{{ contract_no }}的代扣账户{{ account }}已于{{ cancelled_on }}解约，"
            "今后不再自动扣款。下期{{ next_due_date }}应还{{ next_amount }}元，请主动还款：{{ pay_url }}；"
            "逾期将产生罚息并可能影响征信。重新签约：{{ resign_url }}",
            "尊敬的{{ borrower_name }}：\n合同{{ contract_no }}的代扣账户{{ account }}已于{{ cancelled_on }}解约，"
            "自即日起我们不会再从该账户自动扣款。\n下期应还：{{ next_amount }}元，到期日：{{ next_due_date }}。\n"
            "请通过 {{ pay_url }}、银行转账或柜面主动按时还款。逾期将按合同计收罚息，并可能按规定报送征信系统，"
            "影响您的信用记录。\n如需恢复自动扣款，请重新签约：{{ resign_url }}。客服电话 {{ service_phone }}。",
        ),
        "en": (
            "Direct debit cancelled",
            "Dear {{ borrower_name }}, the direct debit on {{ account }} for contract {{ contract_no }} was "
            "cancelled on {{ cancelled_on }}. Next due: CNY {{ next_amount }} on {{ next_due_date }} - please pay "
            "at {{ pay_url }}; late payment incurs penalty interest and may affect your credit record. "
            "Sign again: {{ resign_url }}",
            "Dear {{ borrower_name }},\nThe direct-debit mandate on account {{ account }} for contract "
            "{{ contract_no }} was cancelled on {{ cancelled_on }}. We will no longer debit this account.\n"
            "Next instalment: CNY {{ next_amount }}, due {{ next_due_date }}.\nPlease pay on time at {{ pay_url }}, "
            "by bank transfer or at a counter. Late payment incurs penalty interest under the contract and may be "
            "reported to the credit bureau.\nTo restore automatic debits, sign a new mandate: {{ resign_url }}. "
            "Call {{ service_phone }} with questions.",
        ),
    },
    "overdue_reminder": {
        "zh-hans": (
            "逾期提醒",
            "尊敬的{{ borrower_name }}，截至{{ as_of }}合同{{ contract_no }}已逾期{{ dpd }}天，应还{{ overdue_total }}元。"
            "请通过官方渠道还款：{{ pay_url }}。困难可致电{{ hardship_phone }}。{{ extra_note }}",
            "尊敬的{{ borrower_name }}：\n截至{{ as_of }}，您的合同{{ contract_no }}已逾期{{ dpd }}天，逾期金额合计"
            "{{ overdue_total }}元（{{ overdue_breakdown }}）。\n请仅通过官方渠道还款：{{ pay_url }}。\n"
            "按合同约定，逾期将持续计收罚息；逾期信息将按规定报送金融信用信息基础数据库。\n"
            "{{ extra_note }}\n如遇还款困难，请致电 {{ hardship_phone }} 协商；投诉请致电 {{ complaint_phone }}。",
        ),
        "en": (
            "Overdue reminder",
            "Dear {{ borrower_name }}, as of {{ as_of }} contract {{ contract_no }} is {{ dpd }} days overdue, "
            "CNY {{ overdue_total }} due. Pay only via {{ pay_url }}. Hardship: {{ hardship_phone }}. {{ extra_note }}",
            "Dear {{ borrower_name }},\nAs of {{ as_of }}, contract {{ contract_no }} is {{ dpd }} days overdue; "
            "CNY {{ overdue_total }} is due ({{ overdue_breakdown }}).\nPlease pay only through official channels: "
            "{{ pay_url }}.\nUnder the contract, penalty interest continues to accrue, and overdue information is "
            "reported to the credit reference database as required.\n{{ extra_note }}\nIf you have difficulty paying, call "
            "{{ hardship_phone }}; to complain, call {{ complaint_phone }}.",
        ),
    },
    "incident_apology": {
        "zh-hans": (
            "致歉说明",
            "尊敬的{{ borrower_name }}，{{ incident_summary }}，由此不会产生任何罚息。{{ what_to_do }}。给您带来不便深表歉意。",
            "尊敬的{{ borrower_name }}：\n{{ incident_summary }}。此次情况不会对您产生任何罚息或征信影响。\n"
            "{{ what_to_do }}。\n给您带来的不便，我们深表歉意。客服电话 {{ service_phone }}。",
        ),
        "en": (
            "Our apologies",
            "Dear {{ borrower_name }}, {{ incident_summary }}. No penalty applies. {{ what_to_do }}. We apologise.",
            "Dear {{ borrower_name }},\n{{ incident_summary }}. No penalty interest or credit-record effect "
            "applies to you.\n{{ what_to_do }}.\nWe apologise for the inconvenience. Call {{ service_phone }} "
            "with questions.",
        ),
    },
    "promise_confirmed": {
        "zh-hans": (
            "还款承诺确认",
            "尊敬的{{ borrower_name }}，您已承诺于{{ promise_date }}前偿还合同{{ contract_no }}款项{{ promise_amount }}元。"
            "还款：{{ pay_url }}",
            "尊敬的{{ borrower_name }}：\n您已承诺于{{ promise_date }}前偿还合同{{ contract_no }}款项"
            "{{ promise_amount }}元。请通过 {{ pay_url }} 按时还款。客服电话 {{ service_phone }}。",
        ),
        "en": (
            "Promise to pay confirmed",
            "Dear {{ borrower_name }}, you promised to pay CNY {{ promise_amount }} for contract {{ contract_no }} "
            "by {{ promise_date }}. Pay: {{ pay_url }}",
            "Dear {{ borrower_name }},\nYou promised to pay CNY {{ promise_amount }} for contract {{ contract_no }} "
            "by {{ promise_date }}. Please pay at {{ pay_url }}. Questions: {{ service_phone }}.",
        ),
    },
    "plan_confirmed": {
        "zh-hans": (
            "还款计划确认",
            "尊敬的{{ borrower_name }}，合同{{ contract_no }}的还款安排已生效：{{ plan_terms }}。",
            "尊敬的{{ borrower_name }}：\n合同{{ contract_no }}的还款安排已生效，约定如下：\n{{ plan_terms }}\n"
            "请按约还款：{{ pay_url }}。客服电话 {{ service_phone }}。",
        ),
        "en": (
            "Repayment plan confirmed",
            "Dear {{ borrower_name }}, the repayment plan for contract {{ contract_no }} is in force: {{ plan_terms }}.",
            "Dear {{ borrower_name }},\nThe repayment plan for contract {{ contract_no }} is in force:\n"
            "{{ plan_terms }}\nPlease pay as agreed at {{ pay_url }}. Questions: {{ service_phone }}.",
        ),
    },
    "settlement": {
        "zh-hans": (
            "贷款已结清",
            "尊敬的{{ borrower_name }}，您的合同{{ contract_no }}已于{{ settled_on }}全部结清。结清证明编号"
            "{{ certificate_no }}，查验：{{ verify_url }}",
            "尊敬的{{ borrower_name }}：\n您的合同{{ contract_no }}已于{{ settled_on }}全部结清，本金、利息、罚息及费用"
            "均已还清，无任何欠款。\n结清证明编号：{{ certificate_no }}，可在自助服务中下载，任何人可凭验证码在 "
            "{{ verify_url }} 查验真伪。\n结清信息将按规定报送征信系统。感谢您的信任！",
        ),
        "en": (
            "Loan settled",
            "Dear {{ borrower_name }}, contract {{ contract_no }} was settled in full on {{ settled_on }}. "
            "Certificate {{ certificate_no }}, verify: {{ verify_url }}",
            "Dear {{ borrower_name }},\nContract {{ contract_no }} was settled in full on {{ settled_on }}: "
            "principal, interest, penalty and fees are paid and nothing is owed.\nSettlement certificate "
            "{{ certificate_no }} can be downloaded in self-service; anyone holding its code can verify it at "
            "{{ verify_url }}.\nThe settlement will be reported to the credit bureau. Thank you!",
        ),
    },
    "complaint_received": {
        "zh-hans": (
            "投诉已受理",
            "尊敬的{{ borrower_name }}，您的投诉已受理，编号{{ reference }}，我们将于{{ deadline }}前答复。",
            "尊敬的{{ borrower_name }}：\n您的投诉已受理，受理编号{{ reference }}。我们将于{{ deadline }}前给予答复。\n"
            "客服电话 {{ service_phone }}。",
        ),
        "en": (
            "Complaint received",
            "Dear {{ borrower_name }}, complaint {{ reference }} is registered; we will answer by {{ deadline }}.",
            "Dear {{ borrower_name }},\nYour complaint is registered under reference {{ reference }}. We will answer "
            "by {{ deadline }}.\nQuestions: {{ service_phone }}.",
        ),
    },
    "complaint_answered": {
        "zh-hans": (
            "投诉处理结果",
            "尊敬的{{ borrower_name }}，您的投诉{{ reference }}已处理：{{ answer }}",
            "尊敬的{{ borrower_name }}：\n您的投诉{{ reference }}处理结果如下：\n{{ answer }}\n"
            "如不满意，请致电 {{ service_phone }}。",
        ),
        "en": (
            "Your complaint: our answer",
            "Dear {{ borrower_name }}, complaint {{ reference }}: {{ answer }}",
            "Dear {{ borrower_name }},\nOur answer to complaint {{ reference }}:\n{{ answer }}\n"
            "If you are not satisfied, call {{ service_phone }}.",
        ),
    },
}

CHANNELS = ("sms", "email", "in_app", "letter")


def default_templates() -> list[dict]:
    """One row per event × channel × language."""
    rows = []
    for event, by_lang in TEXTS.items():
        for language, (subject, short, long) in by_lang.items():
            for channel in CHANNELS:
                body = SIGN[language] + short if channel == "sms" else long
                rows.append({"event": event, "channel": channel, "language": language,
                             "subject": subject, "body": body})
    return rows
