from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from servicing.domain.allocation import COMPONENTS, per_instalment

from .fields import MoneyField


class PaymentChannel(models.TextChoices):
    BANK = "bank", _("银行代扣")
    GATEWAY = "gateway", _("在线支付")
    COUNTER = "counter", _("柜面")
    TRANSFER = "transfer", _("转账")


class PrepayMode(models.TextChoices):
    NONE = "", _("不提前还款（多余挂账）")
    PAYOFF = "payoff", _("提前结清")
    SHORTEN = "shorten", _("缩短期限")
    REDUCE = "reduce", _("减少月供")


class Payment(models.Model):
    """Money received for a loan. Idempotent on `reference`: the same reference is applied once."""

    reference = models.CharField(max_length=80)
    loan = models.ForeignKey("servicing.Loan", on_delete=models.PROTECT, related_name="payments",
                             db_constraint=False, db_index=False)  # payment_loan_date_idx
    channel = models.CharField(max_length=10, choices=PaymentChannel.choices)
    amount = MoneyField()
    value_date = models.DateField()
    prepay_mode = models.CharField(max_length=10, choices=PrepayMode.choices, blank=True, default="")
    applied_amount = MoneyField(help_text=_("冲抵应还部分"))
    credited_amount = MoneyField(help_text=_("转入挂账部分"))
    # the journal entry that posted it: its own (a payment taken by the per-loan service), or the entry a chunk of
    # a bank result file shares (批量入账: one clearing line for the chunk, each loan's lines beneath, one payment
    # per loan; see payment_legs). Not indexed: nothing looks payments up by entry but verify_books' full scan.
    entry = models.ForeignKey("servicing.JournalEntry", on_delete=models.PROTECT, related_name="payments",
                              db_constraint=False, db_index=False)
    reversed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   db_index=False)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("还款")
        verbose_name_plural = _("还款")
        constraints = [
            models.UniqueConstraint(fields=["reference"], name="payment_reference_unique"),  # exact match only
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(condition=Q(applied_amount__gte=0) & Q(credited_amount__gte=0),
                                   name="payment_split_not_negative"),
        ]
        indexes = [models.Index(fields=["loan", "value_date"], name="payment_loan_date_idx"),
                   models.Index(fields=["created_by"], condition=Q(created_by__isnull=False),
                                name="payment_created_by_idx")]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount}"


class Allocation(models.Model):
    """What one posting paid of one instalment, per component (还款明细): one row per instalment, not per
    component, so posting a million auto-debits writes half the rows. Written with the journal entry it
    belongs to; `amount` is the total, computed by PostgreSQL."""

    entry = models.ForeignKey("servicing.JournalEntry", on_delete=models.PROTECT, related_name="allocations",
                              db_constraint=False)
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="allocations",
                                db_constraint=False)
    instalment = models.ForeignKey("servicing.Instalment", on_delete=models.PROTECT, related_name="allocations",
                                   db_constraint=False)
    penalty = MoneyField(_("罚息"), db_default=Decimal("0.00"))
    compound = MoneyField(_("复利"), db_default=Decimal("0.00"))
    fee = MoneyField(_("费用"), db_default=Decimal("0.00"))
    interest = MoneyField(_("利息"), db_default=Decimal("0.00"))
    principal = MoneyField(_("本金"), db_default=Decimal("0.00"))
    amount = models.GeneratedField(expression=F("penalty") + F("compound") + F("fee") + F("interest") + F("principal"),
                                   output_field=MoneyField(), db_persist=True)

    class Meta:
        verbose_name = _("还款分配")
        verbose_name_plural = _("还款分配")
        constraints = [
            models.CheckConstraint(condition=Q(penalty__gte=0) & Q(compound__gte=0) & Q(fee__gte=0)
                                   & Q(interest__gte=0) & Q(principal__gte=0), name="allocation_parts_not_negative"),
            models.CheckConstraint(condition=Q(penalty__gt=0) | Q(compound__gt=0) | Q(fee__gt=0) | Q(interest__gt=0)
                                   | Q(principal__gt=0), name="allocation_amount_positive"),
        ]

    def __str__(self) -> str:
        return " ".join(f"{c} {v}" for c, v in self.parts().items())

    def parts(self, order: Iterable[str] = COMPONENTS) -> dict[str, Decimal]:
        """The components paid, in `order` (a product's waterfall order, say), leaving out those of zero."""
        return {c: getattr(self, c) for c in order if getattr(self, c)}

    @classmethod
    def rows(cls, lines, **fields) -> list[Allocation]:
        """One row per instalment from waterfall lines (instalment id, component, amount)."""
        return [cls(instalment_id=key, **parts, **fields) for key, parts in per_instalment(lines).items()]
