"""The auto-debit pipeline (代扣): batches, debits and their attempts, result files, exceptions, incidents.

Invariants are database constraints: one batch per channel and business date, one debit per
(loan, due date, attempt), at most one debit in flight per loan (a partial unique index), one import per
file content (SHA-256), one missed-debit exception per instalment.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .fields import MoneyField


class BatchStatus(models.TextChoices):
    BUILDING = "building", _("生成中")  # a big batch is built in chunks; `open` once every chunk is in
    OPEN = "open", _("待送盘")
    EXPORTED = "exported", _("已送盘")
    RESULTS_IMPORTED = "results_imported", _("已回盘")
    CLOSED = "closed", _("已关闭")


class DebitBatch(models.Model):
    """One batch per channel per business date (送盘批次), with the control totals of the exported file."""

    reference = models.CharField(_("批次号"), max_length=60, unique=True)
    channel = models.ForeignKey("servicing.Channel", on_delete=models.PROTECT, related_name="debit_batches")
    business_date = models.DateField(_("业务日期"))
    status = models.CharField(max_length=20, choices=BatchStatus.choices, default=BatchStatus.OPEN)
    control_count = models.PositiveIntegerField(_("控制笔数"), default=0)
    control_amount = MoneyField(_("控制金额"))
    exported_at = models.DateTimeField(null=True, blank=True)
    exported_path = models.CharField(max_length=500, blank=True)
    export_sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    stats = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("代扣批次")
        verbose_name_plural = _("代扣批次")
        ordering = ["-business_date", "channel_id"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "business_date"], name="one_debit_batch_per_channel_day"),
        ]

    def __str__(self) -> str:
        return self.reference


class DebitStatus(models.TextChoices):
    PLANNED = "planned", _("待送盘")
    SUBMITTED = "submitted", _("已送盘")
    SUCCEEDED = "succeeded", _("扣款成功")
    FAILED = "failed", _("扣款失败")
    UNKNOWN = "unknown", _("结果未明")
    CANCELLED = "cancelled", _("已取消")
    RETURNED = "returned", _("已退回")


IN_FLIGHT_STATUSES = ("planned", "submitted", "unknown")
FINAL_STATUSES = ("succeeded", "failed", "cancelled", "returned")


class DebitKind(models.TextChoices):
    DUE = "due", _("到期扣款")
    RETRY = "retry", _("失败重试")
    REPRESENT = "represent", _("事故后重新扣款")


class Debit(models.Model):
    """One attempt to take an amount under a mandate (一笔代扣)."""

    # Every index on this table is paid on each of the million rows a batch inserts, so FKs covered by a
    # composite index below carry none of their own. No index mentions `status` (the in-flight guard is on the
    # generated `in_flight` instead): the export's planned → submitted update then changes no indexed value
    # and, with the free space the fillfactor leaves on each page (migration 0006), is a HOT update that writes
    # no index entry at all.
    # The references a batch writes a million of are checked once per statement (servicing.references,
    # migration 0010), not by a foreign-key probe per row: those were half of building a batch.
    reference = models.CharField(_("扣款流水号"), max_length=40)
    batch = models.ForeignKey(DebitBatch, on_delete=models.PROTECT, related_name="debits",
                              db_index=False, db_constraint=False)  # debit_batch_idx
    loan = models.ForeignKey("servicing.Loan", on_delete=models.PROTECT, related_name="debits",
                             db_index=False, db_constraint=False)  # debit_idempotency_key (loan, due_date, attempt)
    # no index: a mandate's unsent debits are found through its loan (one_debit_in_flight_per_loan)
    mandate = models.ForeignKey("servicing.Mandate", on_delete=models.PROTECT, related_name="debits",
                                db_index=False, db_constraint=False)
    # no index: nothing looks debits up by instalment (and instalments are never deleted)
    instalment = models.ForeignKey("servicing.Instalment", on_delete=models.PROTECT, related_name="debits",
                                   db_index=False, db_constraint=False,
                                   help_text=_("触发扣款的期次（金额含此前全部逾期应还）"))
    due_date = models.DateField(_("应还日"))
    attempt = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=10, choices=DebitKind.choices, default=DebitKind.DUE)
    amount = MoneyField(_("金额"))
    status = models.CharField(max_length=10, choices=DebitStatus.choices, default=DebitStatus.PLANNED)
    # planned, submitted or unknown; computed by PostgreSQL from status (never written by the application)
    in_flight = models.GeneratedField(expression=Q(status__in=IN_FLIGHT_STATUSES),
                                      output_field=models.BooleanField(), db_persist=True)
    category = models.CharField(_("结果分类"), max_length=30, blank=True)
    result_code = models.CharField(max_length=20, blank=True)
    result_message = models.CharField(max_length=200, blank=True)
    settled_on = models.DateField(null=True, blank=True)
    channel_txn_id = models.CharField(max_length=64, blank=True)
    # the payment and the answering file are set on every debit a bank file answers: checked once per statement
    # too (servicing.references.answer_sql, migration 0014); as deferred foreign keys they were a million row
    # probes each at every chunk's commit, the result file's row locked a million times by both workers
    payment = models.OneToOneField("servicing.Payment", null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="debit", db_constraint=False)
    # The bank's answer (回执) is kept on the debit it answers, as it came (code and message above, the status
    # word) with the action taken, the day and the file line: a debit is one attempt (domain.md), and a row per
    # answer beside it was a million rows for a big file saying the same. An answer that a later one replaces
    # (unknown → succeeded or failed, succeeded → returned) is kept as an EarlierAnswer.
    result_status = models.CharField(_("回执状态"), max_length=40, blank=True, db_default="")
    result_action = models.CharField(_("处理动作"), max_length=200, blank=True, db_default="")
    result_on = models.DateField(_("回执日"), null=True, blank=True)
    result_file = models.ForeignKey("servicing.ResultFile", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="answered_debits", db_index=False,
                                    db_constraint=False)  # debit_answer_once_per_file_line
    result_line = models.PositiveIntegerField(_("回盘行号"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("代扣")
        verbose_name_plural = _("代扣")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["reference"], name="debit_reference_unique"),  # exact match only
            models.UniqueConstraint(fields=["loan", "due_date", "attempt"], name="debit_idempotency_key"),
            # at most one debit planned, submitted or unknown per loan; also the index for in-flight lookups
            # (`WHERE in_flight AND …`, e.g. the unknown debits of the business day)
            models.UniqueConstraint(fields=["loan"], condition=Q(in_flight=True), name="one_debit_in_flight_per_loan"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="debit_amount_positive"),
            # a file line answers one debit; also the index that walks a file's answers in line order. Partial:
            # a debit waiting for its answer adds nothing to it, and the export's update stays HOT
            models.UniqueConstraint(fields=["result_file", "result_line"], condition=Q(result_file__isnull=False),
                                    name="debit_answer_once_per_file_line"),
        ]
        indexes = [models.Index(fields=["batch"], name="debit_batch_idx")]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount} {self.status}"


class ResultFileStatus(models.TextChoices):
    PROCESSING = "processing", _("处理中")
    PROCESSED = "processed", _("已导入")
    REJECTED = "rejected", _("已拒绝")


class ResultFile(models.Model):
    """A bank result file (回盘), imported once per content hash; the bytes are kept on disk."""

    sha256 = models.CharField(max_length=64, unique=True)
    channel = models.ForeignKey("servicing.Channel", on_delete=models.PROTECT, related_name="result_files")
    name = models.CharField(max_length=255)
    path = models.CharField(max_length=500, help_text=_("保存的原始文件"))
    size = models.BigIntegerField(default=0)
    status = models.CharField(max_length=12, choices=ResultFileStatus.choices, default=ResultFileStatus.PROCESSING)
    business_date = models.DateField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    reject_reason = models.TextField(blank=True)
    imported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("回盘文件")
        verbose_name_plural = _("回盘文件")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class EarlierAnswer(models.Model):
    """A bank answer for a debit that a later one replaced (unknown → final, succeeded → returned), kept as it
    was on the debit: raw code and message, category and action taken. The debit holds its current answer."""

    debit = models.ForeignKey(Debit, on_delete=models.PROTECT, related_name="earlier_answers", db_constraint=False)
    result_file = models.ForeignKey(ResultFile, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="earlier_answers", db_constraint=False,
                                    db_index=False)  # attempt_once_per_file_line leads with it
    line_no = models.PositiveIntegerField(null=True, blank=True)
    business_date = models.DateField()
    outcome = models.CharField(max_length=10)
    raw_status = models.CharField(max_length=40, blank=True)
    raw_code = models.CharField(max_length=20, blank=True)
    raw_message = models.CharField(max_length=200, blank=True)
    category = models.CharField(max_length=30, blank=True)
    action = models.CharField(max_length=200, blank=True)
    amount = MoneyField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "servicing_debitattempt"
        verbose_name = _("此前回执")
        verbose_name_plural = _("此前回执")
        ordering = ["debit_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["result_file", "line_no"], name="attempt_once_per_file_line"),
        ]

    def __str__(self) -> str:
        return f"{self.debit_id} {self.outcome} {self.raw_code}"


class ExceptionStatus(models.TextChoices):
    OPEN = "open", _("待处理")
    RESOLVED = "resolved", _("已处理")


class ResolvableException(models.Model):
    """What a person resolves with a note (services.debits.resolution.resolve_exception): the fields the
    reconciliation and missed-debit exceptions share.

    Django puts inherited fields first in ``_meta.fields``: an admin page that shows them lists its ``fields``."""

    status = models.CharField(max_length=10, choices=ExceptionStatus.choices, default=ExceptionStatus.OPEN)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class ReconciliationException(ResolvableException):
    """A result row (or an unresolved unknown debit) that a person must look at (对账差错)."""

    result_file = models.ForeignKey(ResultFile, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="exceptions")
    debit = models.ForeignKey(Debit, null=True, blank=True, on_delete=models.PROTECT, related_name="exceptions")
    loan = models.ForeignKey("servicing.Loan", null=True, blank=True, on_delete=models.PROTECT,
                             related_name="reconciliation_exceptions")
    line_no = models.PositiveIntegerField(null=True, blank=True)
    raw_text = models.TextField(blank=True)
    reason_code = models.CharField(max_length=30)
    reason = models.CharField(max_length=300)

    class Meta:
        verbose_name = _("对账差错")
        verbose_name_plural = _("对账差错")
        ordering = ["-created_at", "line_no"]
        constraints = [
            models.UniqueConstraint(fields=["result_file", "line_no"], condition=Q(result_file__isnull=False),
                                    name="recon_exception_once_per_line"),
            models.UniqueConstraint(fields=["debit"], condition=Q(reason_code="unknown_unresolved"),
                                    name="recon_unknown_once_per_debit"),
            models.CheckConstraint(condition=Q(status="open") | Q(resolved_at__isnull=False),
                                   name="recon_resolved_has_time"),
        ]
        indexes = [models.Index(fields=["status"], condition=Q(status="open"), name="recon_open_idx"),
                   models.Index(fields=["loan", "status"], name="recon_loan_status_idx")]

    def __str__(self) -> str:
        where = f"line {self.line_no}: " if self.line_no else ""
        return f"{where}{self.reason}"


class MissedDebitException(ResolvableException):
    """An instalment due (or overdue) with no debit and no recorded reason: the sweep caught it (漏扣)."""

    instalment = models.OneToOneField("servicing.Instalment", on_delete=models.PROTECT,
                                      related_name="missed_debit")
    loan = models.ForeignKey("servicing.Loan", on_delete=models.PROTECT, related_name="missed_debits")
    business_date = models.DateField()
    reason = models.CharField(max_length=40, help_text=_("已知原因（如协议已解约）"))

    class Meta:
        verbose_name = _("漏扣差错")
        verbose_name_plural = _("漏扣差错")
        ordering = ["-business_date", "id"]
        indexes = [models.Index(fields=["status", "business_date"], name="missed_status_date_idx")]

    def __str__(self) -> str:
        return f"{self.loan_id} {self.business_date} {self.reason}"


class SkipReason(models.TextChoices):
    ABOVE_LIMIT = "above_single_limit", _("超过单笔限额（不拆分）")
    UNKNOWN_PENDING = "unknown_pending", _("有结果未明的扣款")
    IN_FLIGHT = "in_flight", _("已有在途扣款")
    INCIDENT_HOLD = "incident_hold", _("渠道事故暂停")
    COVERED_BY_CREDIT = "covered_by_credit", _("挂账余额足以冲抵")
    RETRY_SCHEDULED = "retry_scheduled", _("已安排重试")
    NO_RETRY = "no_retry", _("失败后不再重试（已通知）")
    PAY_BY_SELF = "pay_by_self", _("产品为自行还款")


class DebitSkip(models.Model):
    """A recorded reason why a loan with something due was not debited on a business date."""

    loan = models.ForeignKey("servicing.Loan", on_delete=models.PROTECT, related_name="debit_skips")
    instalment = models.ForeignKey("servicing.Instalment", null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    channel = models.ForeignKey("servicing.Channel", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+")
    business_date = models.DateField()
    reason = models.CharField(max_length=30, choices=SkipReason.choices)
    detail = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("未扣款原因")
        verbose_name_plural = _("未扣款原因")
        ordering = ["-business_date", "loan_id"]
        constraints = [models.UniqueConstraint(fields=["loan", "business_date"], name="one_skip_per_loan_day")]

    def __str__(self) -> str:
        return f"{self.loan_id} {self.business_date} {self.reason}"


class RetryStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("已安排重试")
    IN_FLIGHT = "in_flight", _("重试中")
    EXHAUSTED = "exhausted", _("重试次数用尽")
    STOPPED = "stopped", _("不再重试")
    HELD = "held", _("事故暂停")


class RetryState(models.Model):
    """Retry state of one instalment's debits (product retry policy, defaults in debits.md)."""

    instalment = models.OneToOneField("servicing.Instalment", on_delete=models.PROTECT, related_name="retry_state")
    loan = models.ForeignKey("servicing.Loan", on_delete=models.PROTECT, related_name="retry_states")
    first_failed_on = models.DateField()
    failures = models.PositiveSmallIntegerField(default=0)
    retries_used = models.PositiveSmallIntegerField(default=0)
    next_retry_on = models.DateField(null=True, blank=True)
    next_kind = models.CharField(max_length=10, choices=DebitKind.choices, default=DebitKind.RETRY)
    status = models.CharField(max_length=10, choices=RetryStatus.choices)
    last_category = models.CharField(max_length=30, blank=True)
    last_debit = models.ForeignKey(Debit, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("重试计划")
        verbose_name_plural = _("重试计划")
        indexes = [models.Index(fields=["next_retry_on"], condition=Q(status="scheduled"),
                                name="retry_scheduled_idx")]

    def __str__(self) -> str:
        return f"{self.instalment_id} {self.status} {self.next_retry_on}"


class PreDueWarning(models.Model):
    """The pre-due check: a loan that will not be debited on its coming due date, for ops and the borrower."""

    class Reason(models.TextChoices):
        NO_MANDATE = "no_active_mandate", _("无生效代扣协议")
        SUSPENDED = "mandate_suspended", _("代扣协议已暂停")
        ABOVE_LIMIT = "above_single_limit", _("应还金额超过单笔限额")

    loan = models.ForeignKey("servicing.Loan", on_delete=models.PROTECT, related_name="pre_due_warnings")
    instalment = models.ForeignKey("servicing.Instalment", on_delete=models.PROTECT, related_name="+")
    checked_on = models.DateField()
    due_date = models.DateField()
    reason = models.CharField(max_length=30, choices=Reason.choices)
    amount = MoneyField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("扣款预检")
        verbose_name_plural = _("扣款预检")
        ordering = ["due_date", "loan_id"]
        constraints = [models.UniqueConstraint(fields=["instalment", "reason"], name="one_pre_due_warning")]

    def __str__(self) -> str:
        return f"{self.loan_id} {self.due_date} {self.reason}"


class IncidentStatus(models.TextChoices):
    OPEN = "open", _("进行中")
    CLOSED = "closed", _("已恢复")


class Incident(models.Model):
    """A mass failure on a channel (渠道事故): penalty and DPD frozen for its window for affected loans."""

    reference = models.CharField(max_length=40, unique=True)
    channel = models.ForeignKey("servicing.Channel", on_delete=models.PROTECT, related_name="incidents")
    batch = models.ForeignKey(DebitBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="incidents")
    status = models.CharField(max_length=10, choices=IncidentStatus.choices, default=IncidentStatus.OPEN)
    automatic = models.BooleanField(default=False)
    title = models.CharField(max_length=200)
    window_start = models.DateField()
    window_end = models.DateField(null=True, blank=True, help_text=_("空表示仍在进行"))
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    opened_at = models.DateTimeField(auto_now_add=True)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    closed_at = models.DateTimeField(null=True, blank=True)
    represent_on = models.DateField(null=True, blank=True)
    waiver_requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                            on_delete=models.PROTECT, related_name="+")
    waiver_requested_at = models.DateTimeField(null=True, blank=True)
    waiver_approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                           on_delete=models.PROTECT, related_name="+")
    waiver_approved_at = models.DateTimeField(null=True, blank=True)
    waived_amount = MoneyField()
    stats = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("渠道事故")
        verbose_name_plural = _("渠道事故")
        ordering = ["-opened_at"]
        constraints = [
            models.CheckConstraint(condition=Q(waiver_approved_by__isnull=True)
                                   | ~Q(waiver_approved_by=models.F("waiver_requested_by")),
                                   name="incident_waiver_four_eyes"),
            models.UniqueConstraint(fields=["batch"], condition=Q(automatic=True), name="one_auto_incident_per_batch"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"


class IncidentLoan(models.Model):
    """A loan affected by an incident (penalty/DPD frozen in the window, held, re-presented, told once)."""

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="affected")
    loan = models.ForeignKey("servicing.Loan", on_delete=models.PROTECT, related_name="incidents")
    debit = models.ForeignKey(Debit, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    waived_amount = MoneyField()
    represented_debit = models.ForeignKey(Debit, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("事故影响贷款")
        verbose_name_plural = _("事故影响贷款")
        constraints = [models.UniqueConstraint(fields=["incident", "loan"], name="incident_loan_once")]
        indexes = [models.Index(fields=["loan"], name="incident_loan_loan_idx")]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.loan_id}"


class GatewayPaymentStatus(models.TextChoices):
    CREATED = "created", _("待支付")
    PAID = "paid", _("已支付")
    FAILED = "failed", _("支付失败")


class GatewayPayment(models.Model):
    """An active repayment through a payment gateway (主动还款): our order and the gateway's trade number."""

    out_trade_no = models.CharField(max_length=40, unique=True)
    gateway = models.CharField(max_length=20, default="sandbox")
    trade_no = models.CharField(max_length=64, null=True, blank=True, unique=True)
    loan = models.ForeignKey("servicing.Loan", on_delete=models.PROTECT, related_name="gateway_payments")
    amount = MoneyField()
    purpose = models.CharField(max_length=20, default="due")
    status = models.CharField(max_length=10, choices=GatewayPaymentStatus.choices,
                              default=GatewayPaymentStatus.CREATED)
    payment = models.OneToOneField("servicing.Payment", null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="gateway_payment")
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    callback_count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("在线支付订单")
        verbose_name_plural = _("在线支付订单")
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="gateway_amount_positive")]

    def __str__(self) -> str:
        return f"{self.out_trade_no} {self.amount} {self.status}"
