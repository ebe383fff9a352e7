"""Self-service state that belongs to no other app: pay-now idempotency tokens and password-reset codes."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from servicing.models.fields import MoneyField


class PayIntent(models.Model):
    """One pay-now submission, keyed by the idempotency token the pay form carries.

    The token is unique in the database: a double click or a refreshed POST finds the existing intent and
    shows its result instead of paying again. The payment reference derives from the token too, so the
    servicing core (idempotent on the reference) could not post it twice even if this table were bypassed.
    """

    class Kind(models.TextChoices):
        OVERDUE = "overdue", _("逾期金额")
        NEXT = "next", _("下一期应还")
        ANY = "any", _("自定义金额")
        PAYOFF = "payoff", _("提前结清")

    class Status(models.TextChoices):
        PROCESSING = "processing", _("处理中")
        SUCCEEDED = "succeeded", _("支付成功")
        FAILED = "failed", _("支付失败")

    token = models.UUIDField(unique=True)
    borrower = models.ForeignKey("servicing.Borrower", on_delete=models.PROTECT, related_name="pay_intents")
    loan = models.ForeignKey("servicing.Loan", on_delete=models.PROTECT, related_name="pay_intents")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = MoneyField()
    value_date = models.DateField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PROCESSING)
    payment = models.ForeignKey("servicing.Payment", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+")
    gateway_ref = models.CharField(max_length=80, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("自助还款请求")
        verbose_name_plural = _("自助还款请求")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payintent_amount_positive"),
            models.CheckConstraint(condition=~Q(status="succeeded") | Q(payment__isnull=False),
                                   name="payintent_success_has_payment"),
        ]
        indexes = [models.Index(fields=["loan", "created_at"], name="payintent_loan_idx")]

    def __str__(self) -> str:
        return f"{self.token} {self.kind} {self.amount} {self.status}"

    @property
    def reference(self) -> str:
        return f"PORTAL-{self.token.hex}"


class ResetCode(models.Model):
    """A one-time password-reset code sent by SMS. Only its hash is stored; it expires and counts attempts."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    code_hash = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    request_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        verbose_name = _("重置密码验证码")
        verbose_name_plural = _("重置密码验证码")
        indexes = [models.Index(fields=["user", "created_at"], name="resetcode_user_idx")]

    def __str__(self) -> str:
        return f"reset code #{self.pk} for user {self.user_id}"
