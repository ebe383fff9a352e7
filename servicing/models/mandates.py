import pghistory
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .fields import MoneyField


class MandateStatus(models.TextChoices):
    PENDING = "pending", _("待银行确认")
    ACTIVE = "active", _("生效")
    SUSPENDED = "suspended", _("暂停")
    CANCELLED = "cancelled", _("已解约")


class CancelCause(models.TextChoices):
    BORROWER = "borrower", _("借款人解约")
    BANK = "bank", _("银行解约")
    STAFF = "staff", _("员工操作")
    REPLACED = "replaced", _("更换账户")


LIVE_MANDATE_STATUSES = (MandateStatus.PENDING, MandateStatus.ACTIVE, MandateStatus.SUSPENDED)


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent())
class Mandate(models.Model):
    """The borrower's authorisation (代扣协议) to debit one account for one loan."""

    agreement_no = models.CharField(max_length=40, unique=True)
    borrower = models.ForeignKey("servicing.Borrower", on_delete=models.PROTECT, related_name="mandates")
    loan = models.ForeignKey("servicing.Loan", on_delete=models.PROTECT, related_name="mandates")
    channel = models.ForeignKey("servicing.Channel", on_delete=models.PROTECT, related_name="mandates")
    account_no = models.CharField(_("账号"), max_length=32)
    account_name = models.CharField(_("户名"), max_length=60)
    bank_code = models.CharField(max_length=20)
    status = models.CharField(max_length=12, choices=MandateStatus.choices, default=MandateStatus.PENDING)
    single_limit = MoneyField(null=True, blank=True, default=None, help_text=_("单笔限额"))
    daily_limit = MoneyField(null=True, blank=True, default=None, help_text=_("日累计限额"))
    signed_at = models.DateTimeField()
    activated_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspend_reason = models.CharField(max_length=200, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_cause = models.CharField(max_length=10, choices=CancelCause.choices, blank=True)
    cancel_reason = models.CharField(max_length=200, blank=True)
    cancelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        verbose_name = _("代扣协议")
        verbose_name_plural = _("代扣协议")
        constraints = [
            # a loan debits one account at a time; a new account is signed (pending) before the old is cancelled
            models.UniqueConstraint(fields=["loan"], condition=Q(status__in=["active", "suspended"]),
                                    name="one_usable_mandate_per_loan"),
            models.UniqueConstraint(fields=["loan"], condition=Q(status="pending"), name="one_pending_mandate_per_loan"),
            models.CheckConstraint(condition=~Q(status="cancelled") | (Q(cancelled_at__isnull=False) & ~Q(cancel_cause="")),
                                   name="mandate_cancel_has_cause"),
        ]

    def __str__(self) -> str:
        return f"{self.agreement_no} {self.masked_account}"

    @property
    def masked_account(self) -> str:
        return mask_account(self.account_no)


def mask_account(account_no: str) -> str:
    """6222 **** **** 1234: first four and last four digits only."""
    digits = account_no.replace(" ", "")
    if len(digits) < 8:
        return "****"
    return f"{digits[:4]} **** **** {digits[-4:]}"
