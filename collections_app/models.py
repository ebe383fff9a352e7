"""Collections (催收) data: cases, the strategy ladder, contacts, promises, hardship, waivers, complaints.

Invariants live in the database: one open case per loan (partial unique), one pending escalation request
per case, one pending or active hardship arrangement per case, a complaint reference once.
"""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from servicing.models.fields import MoneyField

USER = settings.AUTH_USER_MODEL


# --------------------------------------------------------------------------------------------------
# The strategy ladder (data, per product through LoanProduct.collection_strategy)
# --------------------------------------------------------------------------------------------------

class StrategyStage(models.Model):
    """One rung of a collection ladder. A product uses the ladder named by its `collection_strategy`.

    A case is at the highest stage whose threshold its DPD reaches: threshold = `entry_dpd`, plus the
    product's grace days when `after_grace` (stage 2 starts at grace end + 4 days). A stage that needs
    approval is entered only once a supervisor approved the case's escalation request.
    """

    strategy = models.SlugField(_("策略"), max_length=40, default="default")
    stage_no = models.PositiveSmallIntegerField(_("阶段"))
    name = models.CharField(_("名称"), max_length=60)
    entry_dpd = models.PositiveSmallIntegerField(_("进入逾期天数"))
    after_grace = models.BooleanField(_("从宽限期结束起算"), default=False)
    actions = models.JSONField(_("动作"), default=list, blank=True,
                               help_text=_("如 [\"sms\", \"in_app\", \"call\", \"letter\", \"legal_notice\"]"))
    message_channels = models.JSONField(_("自动消息渠道"), default=list, blank=True,
                                        help_text=_("自动发送 overdue_reminder 的渠道，空表示不自动发送"))
    cadence_days = models.PositiveSmallIntegerField(_("跟进间隔（天）"), default=7)
    requires_approval = models.BooleanField(_("需主管批准"), default=False)
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("催收策略阶段")
        verbose_name_plural = _("催收策略阶段")
        ordering = ["strategy", "stage_no"]
        constraints = [models.UniqueConstraint(fields=["strategy", "stage_no"], name="uniq_strategy_stage")]

    def __str__(self) -> str:
        return f"{self.strategy} {self.stage_no} · {self.name}"


class Agency(models.Model):
    """An outside collection agency. Only agencies on the lender's published list may receive cases."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(_("名称"), max_length=120)
    on_published_list = models.BooleanField(_("已在公示名单"), default=False)
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("委外机构")
        verbose_name_plural = _("委外机构")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class CollectorProfile(models.Model):
    """How a collector takes work: buckets served (comma list; empty = any) and a load cap."""

    user = models.OneToOneField(USER, on_delete=models.CASCADE, related_name="collector_profile")
    buckets = models.CharField(_("负责账龄"), max_length=40, blank=True, help_text=_("如 M1,M2；空表示全部"))
    max_open_cases = models.PositiveIntegerField(_("最大在手案件"), default=500)
    agency = models.ForeignKey(Agency, null=True, blank=True, on_delete=models.PROTECT)
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("催收员设置")
        verbose_name_plural = _("催收员设置")

    def __str__(self) -> str:
        return str(self.user)


# --------------------------------------------------------------------------------------------------
# Cases and their timeline
# --------------------------------------------------------------------------------------------------

class CaseStatus(models.TextChoices):
    OPEN = "open", _("处理中")
    PAUSED = "paused", _("暂停")
    CLOSED = "closed", _("已关闭")


OPEN_CASE_STATUSES = (CaseStatus.OPEN, CaseStatus.PAUSED)


class PauseReason(models.TextChoices):
    NONE = "", _("无")
    COMPLAINT = "complaint", _("投诉处理中")
    HARDSHIP = "hardship", _("困难救助")
    INCIDENT = "incident", _("系统事件")


class CloseReason(models.TextChoices):
    NONE = "", _("无")
    CURED = "cured", _("已还清逾期")
    SETTLED = "settled", _("已结清")
    WRITTEN_OFF = "written_off", _("已核销")


class CollectionCase(models.Model):
    """One default of one loan, from grace end to cure. Never two open at once for a loan."""

    loan = models.ForeignKey("servicing.Loan", on_delete=models.PROTECT, related_name="collection_cases")
    borrower = models.ForeignKey("servicing.Borrower", on_delete=models.PROTECT, related_name="collection_cases")
    status = models.CharField(_("状态"), max_length=10, choices=CaseStatus.choices, default=CaseStatus.OPEN)
    pause_reason = models.CharField(_("暂停原因"), max_length=12, choices=PauseReason.choices, blank=True, default="")
    opened_on = models.DateField(_("立案日"))
    closed_on = models.DateField(_("结案日"), null=True, blank=True)
    close_reason = models.CharField(max_length=12, choices=CloseReason.choices, blank=True, default="")
    dpd = models.PositiveIntegerField(_("逾期天数"), default=0)
    bucket = models.CharField(_("账龄"), max_length=4, default="M1")
    stage = models.PositiveSmallIntegerField(_("阶段"), default=1)
    stage_since = models.DateField(null=True, blank=True)
    overdue_principal = MoneyField(_("逾期本金"))
    overdue_interest = MoneyField(_("逾期利息"))
    overdue_fee = MoneyField(_("逾期费用"))
    overdue_penalty = MoneyField(_("罚息"))
    overdue_compound = MoneyField(_("复利"))
    overdue_total = MoneyField(_("逾期合计"))
    assigned_to = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="collection_cases", verbose_name=_("催收员"))
    agency = models.ForeignKey(Agency, null=True, blank=True, on_delete=models.PROTECT, verbose_name=_("委外机构"))
    agency_from = models.DateField(_("委外生效日"), null=True, blank=True)
    next_action_on = models.DateField(_("下次跟进日"), null=True, blank=True)
    broken_promises = models.PositiveSmallIntegerField(default=0)
    prior_cures = models.PositiveSmallIntegerField(default=0)
    priority = models.IntegerField(_("优先级"), default=0)
    priority_reasons = models.JSONField(default=dict, blank=True)
    updated_on = models.DateField(null=True, blank=True)

    class Meta:
        verbose_name = _("催收案件")
        verbose_name_plural = _("催收案件")
        ordering = ["-priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["loan"], condition=Q(status__in=["open", "paused"]),
                                    name="one_open_case_per_loan"),
            models.CheckConstraint(condition=~Q(status="closed") | Q(closed_on__isnull=False),
                                   name="closed_case_has_date"),
        ]
        indexes = [
            models.Index(fields=["assigned_to", "-priority"], condition=Q(status__in=["open", "paused"]),
                         name="case_queue_idx"),
            models.Index(fields=["status", "stage"], name="case_status_stage_idx"),
            models.Index(fields=["loan", "status"], name="case_loan_status_idx"),
            models.Index(fields=["next_action_on"], condition=Q(status="open"), name="case_next_action_idx"),
        ]

    def __str__(self) -> str:
        return f"C{self.pk} {self.loan_id}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_CASE_STATUSES


class EventKind(models.TextChoices):
    OPENED = "opened", _("立案")
    REOPENED = "reopened", _("再次逾期立案")
    CLOSED = "closed", _("结案")
    STAGE = "stage", _("阶段变更")
    ASSIGNED = "assigned", _("分案")
    CONTACT = "contact", _("联系")
    CONTACT_REFUSED = "contact_refused", _("联系被规则拒绝")
    OVERRIDE = "override", _("主管越权放行")
    PROMISE = "promise", _("承诺还款")
    PROMISE_KEPT = "promise_kept", _("承诺已兑现")
    PROMISE_BROKEN = "promise_broken", _("承诺未兑现")
    PAYMENT = "payment", _("还款")
    DEBIT_FAILED = "debit_failed", _("扣款失败")
    MANDATE_CANCELLED = "mandate_cancelled", _("代扣解约")
    NOTICE = "notice", _("通知")
    PAUSED = "paused", _("暂停")
    RESUMED = "resumed", _("恢复")
    ESCALATION = "escalation", _("升级审批")
    HARDSHIP = "hardship", _("困难救助")
    WAIVER = "waiver", _("减免")
    COMPLAINT = "complaint", _("投诉")
    HANDOVER = "handover", _("委外")


class CaseEvent(models.Model):
    """The case's timeline. `dedupe_key` makes set-based inserts idempotent when a day is re-run."""

    case = models.ForeignKey(CollectionCase, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=EventKind.choices)
    at = models.DateTimeField()
    business_date = models.DateField()
    actor = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT)
    detail = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)
    dedupe_key = models.CharField(max_length=120, null=True, blank=True, unique=True)

    class Meta:
        verbose_name = _("案件时间线")
        verbose_name_plural = _("案件时间线")
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["case", "at"], name="caseevent_case_at_idx")]

    def __str__(self) -> str:
        return f"{self.business_date} {self.kind}"


class EscalationRequest(models.Model):
    """A request to move a case into a stage that needs a supervisor's approval (legal)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("待审批")
        APPROVED = "approved", _("已批准")
        REJECTED = "rejected", _("已驳回")

    case = models.ForeignKey(CollectionCase, on_delete=models.CASCADE, related_name="escalations")
    to_stage = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_on = models.DateField()
    requested_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_on = models.DateField(null=True, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        verbose_name = _("升级审批")
        verbose_name_plural = _("升级审批")
        constraints = [models.UniqueConstraint(fields=["case"], condition=Q(status="pending"),
                                               name="one_pending_escalation_per_case")]

    def __str__(self) -> str:
        return f"{self.case} → {self.to_stage} ({self.status})"


# --------------------------------------------------------------------------------------------------
# Contacts
# --------------------------------------------------------------------------------------------------

class ContactPerson(models.Model):
    """A borrower's emergency contact (紧急联系人): reachable only when the borrower is not."""

    borrower = models.ForeignKey("servicing.Borrower", on_delete=models.CASCADE, related_name="contact_persons")
    name = models.CharField(_("姓名"), max_length=60)
    relation = models.CharField(_("关系"), max_length=20)
    phone = models.CharField(_("电话"), max_length=20)
    refused = models.BooleanField(_("已明确拒绝再被联系"), default=False)

    class Meta:
        verbose_name = _("紧急联系人")
        verbose_name_plural = _("紧急联系人")

    def __str__(self) -> str:
        return f"{self.name[:1]}* ({self.relation})"


class Channel(models.TextChoices):
    CALL = "call", _("电话")
    SMS = "sms", _("短信")
    APP = "in_app", _("站内信")
    EMAIL = "email", _("邮件")
    LETTER = "letter", _("信函")
    VISIT = "visit", _("上门")


MESSAGE_CHANNELS = (Channel.SMS, Channel.APP, Channel.EMAIL, Channel.LETTER)


class Target(models.TextChoices):
    BORROWER = "borrower", _("借款人本人")
    CONTACT = "contact", _("紧急联系人")
    GUARANTOR = "guarantor", _("担保人")


class Outcome(models.TextChoices):
    CONNECTED = "connected", _("接通")
    NO_ANSWER = "no_answer", _("无人接听")
    BUSY = "busy", _("占线/拒接")
    UNREACHABLE = "unreachable", _("空号/停机")
    WRONG_PARTY = "wrong_party", _("非本人")
    PERSON_REFUSED = "person_refused", _("对方拒绝再被联系")
    SENT = "sent", _("已发送")
    PENDING = "pending", _("待记录结果")
    REFUSED = "refused", _("被规则拒绝")


FAILED_OUTCOMES = (Outcome.NO_ANSWER, Outcome.BUSY, Outcome.UNREACHABLE, Outcome.WRONG_PARTY)


class ContactAttempt(models.Model):
    """Every contact made or refused: channel, time, outcome, who (kept ≥ 2 years)."""

    case = models.ForeignKey(CollectionCase, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="contacts")
    borrower = models.ForeignKey("servicing.Borrower", on_delete=models.PROTECT, related_name="contact_attempts")
    loan = models.ForeignKey("servicing.Loan", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(_("渠道"), max_length=10, choices=Channel.choices)
    target = models.CharField(_("对象"), max_length=10, choices=Target.choices, default=Target.BORROWER)
    contact_person = models.ForeignKey(ContactPerson, null=True, blank=True, on_delete=models.PROTECT)
    number = models.CharField(max_length=20, blank=True)
    at = models.DateTimeField(_("时间"), db_index=True)
    local_date = models.DateField(help_text=_("北京时间日期（计数用）"))
    business_date = models.DateField(null=True, blank=True)
    outcome = models.CharField(_("结果"), max_length=16, choices=Outcome.choices)
    allowed = models.BooleanField(_("允许"))
    refused_rule = models.CharField(_("拒绝规则"), max_length=40, blank=True)
    refusal_message = models.CharField(max_length=300, blank=True)
    override_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    override_reason = models.TextField(blank=True)
    overridden_rule = models.CharField(max_length=40, blank=True)
    actor = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    automatic = models.BooleanField(default=False)
    identity_stated = models.BooleanField(_("已表明身份"), default=False)
    discloses_debt = models.BooleanField(default=False)
    agency = models.ForeignKey(Agency, null=True, blank=True, on_delete=models.PROTECT)
    notes = models.TextField(blank=True)
    notice_state = models.CharField(max_length=10, blank=True, default="",
                                    help_text=_("自动消息：pending → queued（已交通知发件箱）"))
    dedupe_key = models.CharField(max_length=120, null=True, blank=True, unique=True)

    class Meta:
        verbose_name = _("联系记录")
        verbose_name_plural = _("联系记录")
        ordering = ["-at"]
        indexes = [
            models.Index(fields=["borrower", "local_date"], name="contact_borrower_day_idx"),
            models.Index(fields=["number", "local_date"], name="contact_number_day_idx"),
            models.Index(fields=["case", "at"], name="contact_case_at_idx"),
            models.Index(fields=["notice_state"], condition=Q(notice_state="pending"), name="contact_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.channel} {self.outcome}"


# --------------------------------------------------------------------------------------------------
# Promises, hardship, waivers
# --------------------------------------------------------------------------------------------------

class PromiseToPay(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("待兑现")
        KEPT = "kept", _("已兑现")
        BROKEN = "broken", _("未兑现")

    case = models.ForeignKey(CollectionCase, on_delete=models.PROTECT, related_name="promises")
    loan = models.ForeignKey("servicing.Loan", on_delete=models.PROTECT, related_name="+")
    amount = MoneyField(_("承诺金额"))
    promised_on = models.DateField(_("承诺日"))
    due_date = models.DateField(_("承诺还款日"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    paid_amount = MoneyField(_("期间已还"))
    resolved_on = models.DateField(null=True, blank=True)
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("承诺还款")
        verbose_name_plural = _("承诺还款")
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="promise_amount_positive")]
        indexes = [models.Index(fields=["due_date"], condition=Q(status="pending"), name="promise_pending_idx")]

    def __str__(self) -> str:
        return f"{self.amount} by {self.due_date}"


class HardshipArrangement(models.Model):
    """Hardship help: a deferral of due dates or a repayment plan re-ageing the arrears (maker-checker)."""

    class Kind(models.TextChoices):
        DEFERRAL = "deferral", _("宽限展期")
        PLAN = "plan", _("分期还款计划（重新账龄）")

    class Status(models.TextChoices):
        REQUESTED = "requested", _("待审批")
        ACTIVE = "active", _("执行中")
        COMPLETED = "completed", _("已完成")
        BROKEN = "broken", _("已违约")
        REJECTED = "rejected", _("已驳回")

    case = models.ForeignKey(CollectionCase, on_delete=models.PROTECT, related_name="hardships")
    loan = models.ForeignKey("servicing.Loan", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    n_instalments = models.PositiveSmallIntegerField(_("分期数"), null=True, blank=True)
    defer_to = models.DateField(_("展期至"), null=True, blank=True)
    reason = models.TextField(_("原因"))
    requested_on = models.DateField()
    requested_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_on = models.DateField(null=True, blank=True)
    decided_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    instalment_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    arrears = models.JSONField(default=dict, blank=True)
    entry = models.ForeignKey("servicing.JournalEntry", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")
    ended_on = models.DateField(null=True, blank=True)

    class Meta:
        verbose_name = _("困难救助")
        verbose_name_plural = _("困难救助")
        constraints = [models.UniqueConstraint(fields=["case"], condition=Q(status__in=["requested", "active"]),
                                               name="one_live_hardship_per_case")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.case} ({self.status})"


class WaiverRequest(models.Model):
    """减免: requested by one person, approved by another within the approver's role limit."""

    class Status(models.TextChoices):
        PENDING = "pending", _("待审批")
        APPROVED = "approved", _("已批准")
        REJECTED = "rejected", _("已驳回")

    case = models.ForeignKey(CollectionCase, null=True, blank=True, on_delete=models.PROTECT, related_name="waivers")
    loan = models.ForeignKey("servicing.Loan", on_delete=models.PROTECT, related_name="+")
    instalment = models.ForeignKey("servicing.Instalment", on_delete=models.PROTECT, related_name="+")
    component = models.CharField(max_length=10, choices=[(c, c) for c in ("penalty", "compound", "fee", "interest")])
    amount = MoneyField(_("金额"))
    reason = models.TextField(_("原因"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_on = models.DateField()
    requested_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    decided_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_on = models.DateField(null=True, blank=True)
    entry = models.ForeignKey("servicing.JournalEntry", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")

    class Meta:
        verbose_name = _("减免申请")
        verbose_name_plural = _("减免申请")
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="waiver_amount_positive"),
                       models.CheckConstraint(condition=~Q(decided_by=models.F("requested_by")),
                                              name="waiver_maker_is_not_checker")]

    def __str__(self) -> str:
        return f"{self.component} {self.amount} ({self.status})"


# --------------------------------------------------------------------------------------------------
# Complaints
# --------------------------------------------------------------------------------------------------

class RootCause(models.TextChoices):
    NONE = "", _("未定")
    CONTACT_CONDUCT = "contact_conduct", _("催收行为")
    CONTACT_FREQUENCY = "contact_frequency", _("联系频率")
    THIRD_PARTY = "third_party", _("联系第三人")
    AMOUNT_DISPUTE = "amount_dispute", _("金额争议")
    DEBIT_PROBLEM = "debit_problem", _("扣款问题")
    HARDSHIP = "hardship", _("还款困难")
    SERVICE = "service", _("服务态度")
    OTHER = "other", _("其他")


class Complaint(models.Model):
    """投诉: a legal clock (15 days, extendable to 30, and 30 more with approval)."""

    class Status(models.TextChoices):
        OPEN = "open", _("处理中")
        ANSWERED = "answered", _("已答复")

    class Source(models.TextChoices):
        STAFF = "staff", _("员工登记")
        PORTAL = "portal", _("自助渠道")

    reference = models.CharField(_("投诉编号"), max_length=24, unique=True)
    loan = models.ForeignKey("servicing.Loan", on_delete=models.PROTECT, related_name="complaints")
    borrower = models.ForeignKey("servicing.Borrower", on_delete=models.PROTECT, related_name="complaints")
    case = models.ForeignKey(CollectionCase, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="complaints")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.STAFF)
    subject = models.CharField(_("主题"), max_length=120)
    description = models.TextField(_("内容"))
    filed_on = models.DateField(_("登记日"))
    filed_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    involved_collector = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    handler = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                verbose_name=_("处理人"))
    due_on = models.DateField(_("答复期限"))
    extensions = models.PositiveSmallIntegerField(default=0)
    root_cause = models.CharField(_("根因"), max_length=20, choices=RootCause.choices, blank=True, default="")
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.OPEN)
    answer = models.TextField(_("答复"), blank=True)
    answered_on = models.DateField(null=True, blank=True)
    answered_late = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("投诉")
        verbose_name_plural = _("投诉")
        ordering = ["due_on"]
        constraints = [
            models.CheckConstraint(condition=~Q(status="answered") | (Q(answered_on__isnull=False) & ~Q(root_cause="")),
                                   name="answered_complaint_has_date_and_cause"),
            models.CheckConstraint(condition=Q(handler__isnull=True) | Q(involved_collector__isnull=True)
                                   | ~Q(handler=models.F("involved_collector")),
                                   name="complaint_handler_not_involved"),
        ]
        indexes = [models.Index(fields=["loan"], condition=Q(status="open"), name="complaint_open_loan_idx")]

    def __str__(self) -> str:
        return self.reference

    def is_overdue(self, as_of: date) -> bool:
        return self.status == self.Status.OPEN and as_of > self.due_on
