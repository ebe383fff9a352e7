from decimal import Decimal

import pghistory
import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.lookups import LessThanOrEqual
from django.utils.translation import gettext_lazy as _

from servicing.domain.allocation import DEFAULT_ORDER
from servicing.domain.schedule import HolidayRule, Method

from .fields import MoneyField, RateField

MAX_ALL_IN_COST_PCT = Decimal("24")  # courts cut cost above 24 % a year


def all_in_cost_pct(annual_rate_pct: Decimal, fee_rate_pct: Decimal, markup_pct: Decimal) -> Decimal:
    """The yearly cost of overdue money: (contract rate + fee × 12) × (1 + penalty markup)."""
    return (annual_rate_pct + fee_rate_pct * 12) * (1 + markup_pct / 100)


class ProductKind(models.TextChoices):
    MORTGAGE = "mortgage", _("房贷")
    CAR = "car", _("车贷")
    CREDIT_LINE = "credit_line", _("信用贷（借呗类）")
    INSTALMENT = "instalment", _("分期（分付类）")


class PrepaymentRule(models.TextChoices):
    ALLOWED = "allowed", _("允许提前还款")
    FEE = "fee", _("允许，收取提前还款违约金")
    NOT_ALLOWED = "not_allowed", _("不允许")


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent())
class LoanProduct(models.Model):
    """A configurable product: schedule, pricing, grace, penalty, waterfall, calendar and retry rules."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=ProductKind.choices)
    schedule_method = models.CharField(max_length=20, choices=[(m.value, m.value) for m in Method])
    allowed_methods = models.CharField(max_length=120, blank=True, help_text=_("逗号分隔；空表示仅默认方式"))
    annual_rate_pct = RateField(help_text=_("年利率 %（日利率 × 360）"))
    fee_rate_pct = RateField(help_text=_("每期手续费率 %（等本等息）"))
    min_months = models.PositiveSmallIntegerField(default=1)
    max_months = models.PositiveSmallIntegerField(default=360)
    grace_days = models.PositiveSmallIntegerField(default=3)
    penalty_markup_pct = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("50"))
    compound_interest = models.BooleanField(default=False, help_text=_("对逾期利息计收复利"))
    allocation_order = models.CharField(max_length=80, default=",".join(DEFAULT_ORDER))
    holiday_rule = models.CharField(max_length=20, choices=[(r.value, r.value) for r in HolidayRule],
                                    default=HolidayRule.NONE)
    grace_end_rolls_to_working_day = models.BooleanField(default=True)
    prepayment_rule = models.CharField(max_length=20, choices=PrepaymentRule.choices, default=PrepaymentRule.ALLOWED)
    prepayment_fee_pct = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("0"))
    auto_debit = models.BooleanField(default=True, help_text=_("到期自动代扣；否则借款人自行还款"))
    secured = models.BooleanField(default=False)
    collateral_label = models.CharField(max_length=60, blank=True, help_text=_("如：房产、车辆"))
    retry_policy = models.JSONField(default=dict, blank=True, help_text=_("扣款失败重试策略（为空用默认）"))
    collection_strategy = models.CharField(max_length=40, blank=True, default="default")
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("贷款产品")
        verbose_name_plural = _("贷款产品")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                # overdue money costs (rate + fee × 12) × (1 + markup): a fee-only product charges its penalty
                # on the fee as the rate. No division: integer form values divide as integers in SQL.
                condition=LessThanOrEqual(
                    (F("annual_rate_pct") + F("fee_rate_pct") * Value(Decimal("12")))
                    * (Value(Decimal("100")) + F("penalty_markup_pct")),
                    Value(MAX_ALL_IN_COST_PCT * 100),
                ),
                name="product_all_in_cost_max_24pct",
                violation_error_message=_("综合年化成本（含罚息上浮与手续费）不得超过 24%%"),
            ),
            models.CheckConstraint(condition=Q(annual_rate_pct__gte=0) & Q(fee_rate_pct__gte=0),
                                   name="product_rates_not_negative"),
            models.CheckConstraint(condition=Q(penalty_markup_pct__gte=0) & Q(penalty_markup_pct__lte=50),
                                   name="product_markup_0_50"),
        ]

    def __str__(self) -> str:
        return f"{self.code} · {self.name}"

    @property
    def all_in_cost_pct(self) -> Decimal:
        return all_in_cost_pct(self.annual_rate_pct, self.fee_rate_pct, self.penalty_markup_pct)

    def methods(self) -> list[str]:
        extra = [m.strip() for m in self.allowed_methods.split(",") if m.strip()]
        return [self.schedule_method, *[m for m in extra if m != self.schedule_method]]

    def order(self) -> tuple[str, ...]:
        return tuple(c.strip() for c in self.allocation_order.split(","))

    @staticmethod
    def order_position_sql(product: str, component: str) -> str:
        """`order()` in SQL: the 1-based position of `component` (an SQL expression) in the allocation order of
        the product row aliased `product`, for set-based reads that sort or split by it."""
        return f"array_position(string_to_array(replace({product}.allocation_order, ' ', ''), ','), {component})"


class Borrower(models.Model):
    name = models.CharField(_("姓名"), max_length=60, db_index=True)
    id_number = models.CharField(_("身份证号"), max_length=18, unique=True)
    phone = models.CharField(_("手机号"), max_length=20, unique=True)
    email = models.EmailField(blank=True)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="borrower")
    language = models.CharField(max_length=10, default="zh-hans")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("借款人")
        verbose_name_plural = _("借款人")
        indexes = [models.Index(fields=["name"], name="borrower_name_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.masked_phone})"

    @property
    def masked_phone(self) -> str:
        p = self.phone
        return p[:3] + "****" + p[-4:] if len(p) >= 11 else "****"

    @property
    def masked_id_number(self) -> str:
        n = self.id_number
        return n[:3] + "*" * (len(n) - 7) + n[-4:] if len(n) > 7 else "****"

    @property
    def masked_name(self) -> str:
        return self.name[:1] + "*" * max(1, len(self.name) - 1)


class LoanStatus(models.TextChoices):
    ACTIVE = "active", _("正常")
    OVERDUE = "overdue", _("逾期")
    SETTLED = "settled", _("已结清")
    WRITTEN_OFF = "written_off", _("已核销")


# Row-level history on purpose: pghistory's statement-level trigger joins the OLD and NEW transition tables, and
# PL/pgSQL caches that plan for the connection's life from the first (often one-row) update: a later
# 13k-row business-day update then ran a nested loop, 160 s instead of 1.4 s.
@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent())
class Loan(models.Model):
    """One contract (合同号) with one live schedule."""

    contract_no = models.CharField(_("合同号"), max_length=32, unique=True)
    product = models.ForeignKey(LoanProduct, on_delete=models.PROTECT, related_name="loans")
    borrower = models.ForeignKey(Borrower, on_delete=models.PROTECT, related_name="loans")
    principal = MoneyField(_("本金"))
    annual_rate_pct = RateField(_("年利率 %"))
    fee_rate_pct = RateField(_("每期费率 %"))
    schedule_method = models.CharField(max_length=20, choices=[(m.value, m.value) for m in Method])
    term_months = models.PositiveSmallIntegerField(_("期数"))
    disbursed_on = models.DateField(_("放款日"))
    repayment_day = models.PositiveSmallIntegerField(_("还款日"))
    status = models.CharField(max_length=12, choices=LoanStatus.choices, default=LoanStatus.ACTIVE)
    dpd = models.PositiveIntegerField(_("逾期天数"), default=0)
    settled_on = models.DateField(_("结清日"), null=True, blank=True)
    credit_balance = MoneyField(_("挂账余额"), help_text=_("由总账推导，verify_books 核对"))
    last_business_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("贷款")
        verbose_name_plural = _("贷款")
        constraints = [
            models.CheckConstraint(condition=Q(principal__gt=0), name="loan_principal_positive"),
            models.CheckConstraint(condition=Q(credit_balance__gte=0), name="loan_credit_balance_not_negative"),
            models.CheckConstraint(condition=Q(repayment_day__gte=1) & Q(repayment_day__lte=31),
                                   name="loan_repayment_day_1_31"),
            models.CheckConstraint(condition=~Q(status="settled") | Q(settled_on__isnull=False),
                                   name="loan_settled_has_date"),
        ]
        indexes = [models.Index(fields=["status", "dpd"], name="loan_status_dpd_idx"),
                   models.Index(fields=["borrower", "status"], name="loan_borrower_status_idx")]

    def __str__(self) -> str:
        return self.contract_no

    @property
    def annual_rate(self) -> Decimal:
        return self.annual_rate_pct / 100

    @property
    def fee_rate(self) -> Decimal:
        return self.fee_rate_pct / 100

    @property
    def masked_contract_no(self) -> str:
        c = self.contract_no
        return c[:4] + "****" + c[-4:] if len(c) > 8 else c


class InstalmentStatus(models.TextChoices):
    PENDING = "pending", _("未到期")
    PARTIALLY_PAID = "partially_paid", _("部分还款")
    PAID = "paid", _("已还清")
    OVERDUE = "overdue", _("逾期")
    SUPERSEDED = "superseded", _("已重排")


OPEN_INSTALMENT_STATUSES = (InstalmentStatus.PENDING, InstalmentStatus.PARTIALLY_PAID, InstalmentStatus.OVERDUE)
COMPONENTS = ("penalty", "compound", "fee", "interest", "principal")


# What an instalment owes and why it changed (billing, accrual, waiver, reschedule, dates) is its history; what was
# paid is the allocations' record (each names its payment and journal entry). So an update that only applies a
# payment (paid amounts, paid_on, and the status that follows from them and from the date) writes no history row,
# which halves what posting a million auto-debits writes to this table. Superseding an instalment is recorded.
PAYMENT_APPLIED_FIELDS = ("principal_paid", "interest_paid", "fee_paid", "penalty_paid", "compound_paid", "paid_on",
                          "status")
INSTALMENT_HISTORY_FIELDS = ("loan_id", "seq", "period_start", "due_date", "principal_due", "interest_due", "fee_due",
                             "penalty_accrued", "compound_accrued", "principal_waived", "interest_waived",
                             "fee_waived", "penalty_waived", "compound_waived", "billed", "penalty_accrued_through")
OWED_CHANGED = pgtrigger.Condition(
    "(({old}) IS DISTINCT FROM ({new}) OR (OLD.status = 'superseded') IS DISTINCT FROM (NEW.status = 'superseded'))"
    .format(old=", ".join(f"OLD.{f}" for f in INSTALMENT_HISTORY_FIELDS),
            new=", ".join(f"NEW.{f}" for f in INSTALMENT_HISTORY_FIELDS)))


@pghistory.track(pghistory.UpdateEvent(condition=OWED_CHANGED))  # row-level: see Loan
class Instalment(models.Model):
    """One dated amount of the schedule (期次), with what was paid and waived per component.

    `billed` means interest and fee are recognised as receivable in the ledger (on the due date, or
    earlier when a payment or payoff reaches them); principal is receivable from disbursement.
    """

    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="instalments",
                             db_index=False)  # instalment_loan_due_idx leads with it
    seq = models.PositiveSmallIntegerField()
    period_start = models.DateField()
    due_date = models.DateField()
    principal_due = MoneyField()
    interest_due = MoneyField()
    fee_due = MoneyField()
    penalty_accrued = MoneyField()
    compound_accrued = MoneyField()
    principal_paid = MoneyField()
    interest_paid = MoneyField()
    fee_paid = MoneyField()
    penalty_paid = MoneyField()
    compound_paid = MoneyField()
    principal_waived = MoneyField()
    interest_waived = MoneyField()
    fee_waived = MoneyField()
    penalty_waived = MoneyField()
    compound_waived = MoneyField()
    billed = models.BooleanField(default=False)
    penalty_accrued_through = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=InstalmentStatus.choices, default=InstalmentStatus.PENDING)
    paid_on = models.DateField(null=True, blank=True)

    class Meta:
        verbose_name = _("还款计划期次")
        verbose_name_plural = _("还款计划期次")
        ordering = ["loan_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["loan", "seq"], condition=~Q(status="superseded"),
                                    name="uniq_live_instalment_seq"),
            *[
                models.CheckConstraint(
                    condition=Q(**{f"{c}_paid__gte": 0}) & Q(**{f"{c}_waived__gte": 0})
                    & LessThanOrEqual(F(f"{c}_paid") + F(f"{c}_waived"), F(f"{c}_{'accrued' if c in ('penalty', 'compound') else 'due'}")),
                    name=f"instalment_{c}_paid_within_due",
                )
                for c in COMPONENTS
            ],
            models.CheckConstraint(
                condition=Q(principal_due__gte=0) & Q(interest_due__gte=0) & Q(fee_due__gte=0)
                & Q(penalty_accrued__gte=0) & Q(compound_accrued__gte=0),
                name="instalment_amounts_not_negative",
            ),
        ]
        indexes = [
            models.Index(fields=["due_date"], condition=Q(status__in=["pending", "partially_paid", "overdue"]),
                         name="instalment_open_due_idx"),
            models.Index(fields=["loan", "due_date"], name="instalment_loan_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.loan_id}#{self.seq} {self.due_date}"

    def outstanding(self, component: str) -> Decimal:
        base = getattr(self, f"{component}_{'accrued' if component in ('penalty', 'compound') else 'due'}")
        return base - getattr(self, f"{component}_paid") - getattr(self, f"{component}_waived")

    @property
    def total_due(self) -> Decimal:
        return (self.principal_due + self.interest_due + self.fee_due + self.penalty_accrued
                + self.compound_accrued)

    @property
    def total_paid(self) -> Decimal:
        return sum((getattr(self, f"{c}_paid") for c in COMPONENTS), Decimal("0"))

    @property
    def total_outstanding(self) -> Decimal:
        return sum((self.outstanding(c) for c in COMPONENTS), Decimal("0"))
