"""The console's own data: role capabilities, maker-checker requests, and the summary tables its pages read.

Console pages never scan the big tables on a page load: `console.services.summaries` fills these small
tables (one row per day / month / bucket) from a scheduled django-q2 task, for an explicit date.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

# The capabilities a role may hold beyond Django's per-model view/add/change/delete permissions.
CAPABILITIES = (
    ("view_console_operations", _("查看运营看板（代扣、对账、异常、事件、解约）")),
    ("view_console_risk", _("查看风险看板（逾期分布、迁徙率、结清通知时效）")),
    ("view_console_collections", _("查看催收看板（今日承诺、投诉时限）")),
    ("view_personal_data", _("查看完整个人信息（身份证、手机号、账号），每次查看留痕")),
    ("book_loan", _("登记放款（进件系统）")),
    ("post_payment", _("入账还款")),
    ("manage_mandate", _("签约、解约代扣协议")),
    ("upload_debit_results", _("上传代扣结果文件")),
    ("resolve_exception", _("处理对账与代扣异常")),
    ("request_approval", _("发起减免、核销、人工干预申请（经办）")),
    ("approve_approval", _("审批减免、核销、人工干预申请（复核）")),
    ("export_data", _("导出列表（CSV/XLSX）")),
)


class Capability(models.Model):
    """Holder of the console's custom permissions (no table)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = CAPABILITIES
        verbose_name = _("权限能力")

    def __str__(self) -> str:
        return "capability"



class ApprovalKind(models.TextChoices):
    WAIVER = "waiver", _("减免")
    WRITE_OFF = "write_off", _("核销")
    OVERRIDE = "override", _("人工干预")


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", _("待复核")
    APPROVED = "approved", _("已批准并执行")
    REJECTED = "rejected", _("已拒绝")
    FAILED = "failed", _("批准但执行失败")


class ApprovalRequest(models.Model):
    """Maker-checker: a maker asks, a different checker decides, seeing what the maker saw (`maker_view`)."""

    kind = models.CharField(_("类型"), max_length=12, choices=ApprovalKind.choices)
    action = models.CharField(_("动作"), max_length=40, help_text=_("如 waive、write_off、reactivate_mandate"))
    loan = models.ForeignKey("servicing.Loan", on_delete=models.PROTECT, related_name="approval_requests")
    payload = models.JSONField(_("申请内容"), default=dict)
    maker_view = models.JSONField(_("经办所见快照"), default=dict,
                                  help_text=_("申请时经办看到的贷款状态与金额，复核据此判断"))
    reason = models.TextField(_("理由"))
    status = models.CharField(_("状态"), max_length=10, choices=ApprovalStatus.choices,
                              default=ApprovalStatus.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                     verbose_name=_("经办"))
    requested_at = models.DateTimeField(_("申请时间"), auto_now_add=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("复核"))
    decided_at = models.DateTimeField(_("复核时间"), null=True, blank=True)
    decision_note = models.CharField(_("复核意见"), max_length=200, blank=True)
    result = models.JSONField(_("执行结果"), default=dict, blank=True)

    class Meta:
        verbose_name = _("经办复核申请")
        verbose_name_plural = _("经办复核申请")
        ordering = ["-requested_at"]
        constraints = [
            models.CheckConstraint(condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("requested_by")),
                                   name="approval_checker_not_maker"),
            models.CheckConstraint(condition=Q(status="pending") | Q(decided_by__isnull=False),
                                   name="approval_decided_has_checker"),
        ]
        indexes = [models.Index(fields=["status", "requested_at"], name="approval_status_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()} {self.action} ({self.get_status_display()})"


# ------------------------------------------------------------------------------ summary tables


class LoanBucketMonth(models.Model):
    """Each loan's delinquency bucket at a month's end (or at the latest refresh within the month).

    One narrow row per loan and month; roll rates join one month to the previous one.
    """

    month = models.DateField(help_text=_("月份第一天"))
    loan_id = models.BigIntegerField()
    bucket = models.SmallIntegerField(help_text=_("0=M0, 1=M1, 2=M2, 3=M3, 4=M3+, 5=结清/核销"))
    principal = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["month", "loan_id"], name="uniq_bucket_month_loan")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} loan {self.loan_id}: {self.bucket}"



class DpdBucketMonth(models.Model):
    """Loans and outstanding principal per delinquency bucket per month."""

    month = models.DateField()
    bucket = models.CharField(max_length=6)
    loans = models.PositiveIntegerField(default=0)
    principal = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    refreshed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["month", "bucket"], name="uniq_dpd_bucket_month")]
        ordering = ["month", "bucket"]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.bucket}: {self.loans}"



class RollRateMonth(models.Model):
    """Loans that moved from one bucket at the previous month's end to another at this month's end."""

    month = models.DateField()
    from_bucket = models.CharField(max_length=6)
    to_bucket = models.CharField(max_length=6)
    loans = models.PositiveIntegerField(default=0)
    refreshed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["month", "from_bucket", "to_bucket"],
                                               name="uniq_roll_rate_month")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.from_bucket}→{self.to_bucket}: {self.loans}"



class MandateCancellationDay(models.Model):
    """Mandate cancellations per day and cause, with the spike flag the page alerts on."""

    day = models.DateField()
    cause = models.CharField(max_length=10)
    cancellations = models.PositiveIntegerField(default=0)
    refreshed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "cause"], name="uniq_mandate_cancel_day_cause")]
        ordering = ["-day", "cause"]

    def __str__(self) -> str:
        return f"{self.day} {self.cause}: {self.cancellations}"



class SummaryRefresh(models.Model):
    """When each summary was last refreshed and for which business date (shown on every page)."""

    name = models.CharField(max_length=40, primary_key=True)
    as_of = models.DateField()
    refreshed_at = models.DateTimeField(auto_now=True)
    seconds = models.DecimalField(max_digits=9, decimal_places=3, default=0)
    stats = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.as_of}"


class DebitRunDay(models.Model):
    """Debits per business date × channel × bank × status × result category (the debit-run page)."""

    day = models.DateField()
    channel = models.CharField(max_length=40)
    bank_code = models.CharField(max_length=20)
    status = models.CharField(max_length=10)
    category = models.CharField(max_length=30, blank=True)
    debits = models.PositiveIntegerField(default=0)
    amount = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    refreshed_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["day"], name="debitrunday_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.channel} {self.bank_code} {self.status}: {self.debits}"
