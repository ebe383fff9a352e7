"""Notices data: the outbox, templates, preferences, the in-app inbox, settlement certificates, the KPI.

The outbox row is written in the transaction of the change that causes it, so a rollback removes it;
its dedupe key is unique in the database, so a re-run never queues a second copy.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    SMS = "sms", _("短信")
    EMAIL = "email", _("电子邮件")
    IN_APP = "in_app", _("站内信")
    LETTER = "letter", _("信函")


class Language(models.TextChoices):
    ZH_HANS = "zh-hans", _("简体中文")
    EN = "en", _("English")


class NoticeStatus(models.TextChoices):
    QUEUED = "queued", _("排队中")
    SENDING = "sending", _("发送中")
    SENT = "sent", _("已发送")
    FAILED = "failed", _("发送失败")
    SUPPRESSED = "suppressed", _("已抑制")


class Notice(models.Model):
    """One message to one borrower on one channel (outbox row)."""

    event = models.CharField(_("事件"), max_length=40)
    channel = models.CharField(_("渠道"), max_length=10, choices=Channel.choices)
    language = models.CharField(max_length=10, choices=Language.choices, default=Language.ZH_HANS)
    # checked set-based per statement, not per row (servicing.references; notices migration 0004)
    borrower = models.ForeignKey("servicing.Borrower", on_delete=models.PROTECT, related_name="notices",
                                 db_constraint=False)
    loan = models.ForeignKey("servicing.Loan", null=True, blank=True, on_delete=models.PROTECT,
                             related_name="notices", db_constraint=False, db_index=False)  # notice_loan_idx
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    on_date = models.DateField(_("业务日期"))
    dedupe_key = models.CharField(max_length=200)
    status = models.CharField(_("状态"), max_length=12, choices=NoticeStatus.choices, default=NoticeStatus.QUEUED)
    collection = models.BooleanField(_("催收类"), default=False, help_text=_("计入联系频次上限"))
    context = models.JSONField(default=dict, blank=True)
    scheduled_for = models.DateTimeField(_("计划发送时间"))
    cause_at = models.DateTimeField(null=True, blank=True, help_text=_("引发通知的业务发生时间（用于时效统计）"))
    attempts = models.PositiveSmallIntegerField(_("尝试次数"), default=0)
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(_("发送时间"), null=True, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    provider_ref = models.CharField(max_length=120, blank=True)
    last_error = models.CharField(_("失败原因"), max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("通知")
        verbose_name_plural = _("通知")
        indexes = [
            models.Index(fields=["scheduled_for"], condition=Q(status="queued"), name="notice_due_idx"),
            models.Index(fields=["claimed_at"], condition=Q(status="sending"), name="notice_sending_idx"),
            models.Index(fields=["loan", "created_at"], name="notice_loan_idx"),
            models.Index(fields=["borrower", "scheduled_for"], condition=Q(collection=True),
                         name="notice_collection_idx"),
            models.Index(fields=["cause_at"], condition=Q(event="settlement"), name="notice_settlement_kpi_idx"),
            # loans the debits pre-due check already warned today: the reminder step skips them (tiny, partial)
            models.Index(fields=["on_date", "loan"], name="notice_pre_due_warned_idx",
                         condition=Q(event="pre_debit_reminder") & ~Q(object_type="servicing.instalment")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["dedupe_key"], name="notice_dedupe_key_unique"),  # exact match only
            models.CheckConstraint(condition=~Q(status="sent") | Q(sent_at__isnull=False), name="notice_sent_has_time"),
            models.CheckConstraint(condition=Q(status__in=NoticeStatus.values), name="notice_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.event}/{self.channel} #{self.pk} {self.status}"


class NoticeTemplate(models.Model):
    """Wording of one event on one channel in one language; staff edit it, the form validates it."""

    event = models.CharField(_("事件"), max_length=40)
    channel = models.CharField(_("渠道"), max_length=10, choices=Channel.choices)
    language = models.CharField(_("语言"), max_length=10, choices=Language.choices)
    subject = models.CharField(_("标题"), max_length=200, blank=True)
    body = models.TextField(_("正文"), help_text=_("变量写作 {{ 变量名 }}，只能使用该事件提供的变量"))
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        verbose_name = _("通知模板")
        verbose_name_plural = _("通知模板")
        ordering = ["event", "channel", "language"]
        constraints = [models.UniqueConstraint(fields=["event", "channel", "language"], name="uniq_notice_template")]

    def __str__(self) -> str:
        return f"{self.event} · {self.channel} · {self.language}"


class ChannelPreference(models.Model):
    """A borrower's opt-out of one channel; service notices the law requires ignore it."""

    borrower = models.ForeignKey("servicing.Borrower", on_delete=models.CASCADE, related_name="notice_preferences")
    channel = models.CharField(_("渠道"), max_length=10, choices=Channel.choices)
    opted_out = models.BooleanField(_("退订"), default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("通知偏好")
        verbose_name_plural = _("通知偏好")
        constraints = [models.UniqueConstraint(fields=["borrower", "channel"], name="uniq_notice_preference")]

    def __str__(self) -> str:
        return f"{self.borrower_id} {self.channel} {'opted out' if self.opted_out else 'on'}"


class InboxMessage(models.Model):
    """The borrower's self-service inbox (in-app channel)."""

    borrower = models.ForeignKey("servicing.Borrower", on_delete=models.PROTECT, related_name="inbox")
    notice = models.OneToOneField(Notice, on_delete=models.PROTECT, related_name="inbox_message")
    subject = models.CharField(_("标题"), max_length=200)
    body = models.TextField(_("正文"))
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(_("已读时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("站内信")
        verbose_name_plural = _("站内信")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["borrower", "created_at"], name="inbox_borrower_idx")]

    def __str__(self) -> str:
        return self.subject


class CertificateStatus(models.TextChoices):
    PENDING = "pending", _("生成中")
    ISSUED = "issued", _("已出具")
    SUPERSEDED = "superseded", _("已被新版本替代")


class SettlementCertificate(models.Model):
    """结清证明: one row per version; a correction issues a new version and supersedes the old one."""

    loan = models.ForeignKey("servicing.Loan", on_delete=models.PROTECT, related_name="certificates")
    version = models.PositiveSmallIntegerField(default=1)
    number = models.CharField(_("证明编号"), max_length=40, unique=True)
    verification_code = models.CharField(_("验证码"), max_length=20, unique=True)
    status = models.CharField(_("状态"), max_length=12, choices=CertificateStatus.choices,
                              default=CertificateStatus.PENDING)
    issued_on = models.DateField(_("出具日期"))
    data = models.JSONField(default=dict, help_text=_("证明内容快照"))
    pdf = models.FileField(upload_to="certificates/%Y/%m/", blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    reason = models.CharField(_("重新出具原因"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rendered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("结清证明")
        verbose_name_plural = _("结清证明")
        ordering = ["loan_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["loan", "version"], name="uniq_certificate_version"),
            models.UniqueConstraint(fields=["loan"], condition=~Q(status="superseded"),
                                    name="one_current_certificate_per_loan"),
            models.CheckConstraint(condition=~Q(status="issued") | ~Q(sha256=""), name="issued_certificate_has_hash"),
        ]

    def __str__(self) -> str:
        return self.number


class SettlementKpiDay(models.Model):
    """Per day of the last payment: settlements, notices sent, and how many within one business day."""

    day = models.DateField(_("最后还款日"), primary_key=True)
    settlements = models.PositiveIntegerField(_("结清笔数"), default=0)
    sent = models.PositiveIntegerField(_("已发送结清通知"), default=0)
    within_one_business_day = models.PositiveIntegerField(_("一个工作日内发送"), default=0)
    avg_hours = models.DecimalField(_("平均耗时（小时）"), max_digits=9, decimal_places=2, null=True, blank=True)
    max_hours = models.DecimalField(_("最长耗时（小时）"), max_digits=9, decimal_places=2, null=True, blank=True)
    refreshed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("结清通知时效")
        verbose_name_plural = _("结清通知时效")
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.day} {self.within_one_business_day}/{self.settlements}"

    @property
    def share_within(self):
        return None if not self.settlements else round(100 * self.within_one_business_day / self.settlements, 1)
