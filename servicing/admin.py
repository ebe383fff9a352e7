"""The ops console (Django admin) for servicing data.

Rules: money is shown as ¥1,234.56 and moves only through services (ledger models are read-only here,
loans and instalments cannot be added or deleted); personal data is masked in lists and shown in full
only on change pages to users passing ``can_see_personal_data``; big tables never run an unfiltered
COUNT(*) (``BigTableAdminMixin``); lists select their related rows in the same query.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, Sum
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from notices.admin import NoticeInline
from servicing.admin_utils import (
    BigTableAdminMixin,
    PersonalDataAdminMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInlineMixin,
    money_display,
    pct_display,
)
from servicing.domain.money import format_cny
from servicing.models import (
    Allocation,
    AuditLog,
    Borrower,
    BusinessCalendarDay,
    BusinessDayRun,
    Channel,
    Instalment,
    JournalEntry,
    JournalLine,
    Loan,
    LoanProduct,
    Mandate,
    Payment,
)
from servicing.models.ledger import Account
from servicing.models.loans import COMPONENTS, MAX_ALL_IN_COST_PCT
from servicing.models.mandates import mask_account
from servicing.services.calendar import calendar_cache_clear, provisional_years

admin.site.site_header = "RepayDesk 运营后台"
admin.site.site_title = "RepayDesk 运营后台"
admin.site.index_title = _("运营后台")

_CONTRACT_SEARCH_HELP = _("按合同号、借款人姓名或手机号搜索")


@admin.display(description=_("借方"))
def debit_display(*args):
    """A journal line's debit side (positive amount); works as a function or an admin attribute."""
    amount = args[-1].amount
    return format_cny(amount) if amount > 0 else ""


@admin.display(description=_("贷方"))
def credit_display(*args):
    """A journal line's credit side (negative amount, shown positive)."""
    amount = args[-1].amount
    return format_cny(-amount) if amount < 0 else ""


class ComponentListFilter(admin.SimpleListFilter):
    """Fixed choices: a plain list_filter on a free CharField would SELECT DISTINCT the whole table."""

    title = _("分配项")
    parameter_name = "component"

    def lookups(self, request, model_admin):
        return [(c, Allocation._meta.get_field(c).verbose_name) for c in COMPONENTS]

    def queryset(self, request, queryset):
        # an allocation row pays up to five components of one instalment: the rows that paid something of this one
        return queryset.filter(**{f"{self.value()}__gt": 0}) if self.value() in COMPONENTS else queryset


# --------------------------------------------------------------------------------------------------
# Products and channels (reference data, editable)
# --------------------------------------------------------------------------------------------------

_COST_FIELDS = ("annual_rate_pct", "penalty_markup_pct", "fee_rate_pct")
_COST_CONSTRAINT = "product_all_in_cost_max_24pct"


def _constraint_message(model, name: str) -> str:
    constraint = next(c for c in model._meta.constraints if c.name == name)
    try:
        return constraint.get_violation_error_message()
    except (ValueError, TypeError):  # a bare "%" in the message (see LoanProductAdminForm)
        return str(constraint.violation_error_message)


class LoanProductAdminForm(forms.ModelForm):
    """Shows the 24 % all-in cost rule as a form error instead of an IntegrityError.

    Django 5 validates model constraints in ``full_clean``, but for this constraint it does not work
    as is (Django 5.2 + psycopg 3, checked):

    * decimal inputs such as ``Decimal("50")`` are sent as the literal ``50`` (client-side binding), so
      ``50 / 100`` is an *integer* division in PostgreSQL (0) and the check passes when it should not;
    * the constraint's message contains a bare ``%`` ("24%"), which Django %-formats with the
      constraint name: raising it crashes with "ValueError: incomplete format".

    So the form quantizes the rates to their column scale (which makes Django's own check compute in
    numeric), checks the rule in Python with the model's ``all_in_cost_pct`` and shows the constraint's
    own message; Django's check of that constraint is skipped only when this form already reported it.
    The database constraint stays the final guard.
    """

    class Meta:
        model = LoanProduct
        fields = [f.name for f in LoanProduct._meta.fields if f.editable and not f.primary_key]

    def clean(self):
        cleaned = super().clean()
        for name in _COST_FIELDS:
            value = cleaned.get(name)
            if isinstance(value, Decimal):
                places = LoanProduct._meta.get_field(name).decimal_places
                cleaned[name] = value.quantize(Decimal(1).scaleb(-places))
        markup = cleaned.get("penalty_markup_pct")
        if markup is not None and not (0 <= markup <= 50):
            self.add_error("penalty_markup_pct", _("罚息上浮比例须在 0% 到 50% 之间"))
        for name in ("annual_rate_pct", "fee_rate_pct"):
            if cleaned.get(name) is not None and cleaned[name] < 0:
                self.add_error(name, _("费率不能为负数"))
        self._cost_reported = False
        if all(cleaned.get(n) is not None for n in _COST_FIELDS):
            probe = LoanProduct(**{n: cleaned[n] for n in _COST_FIELDS})
            if probe.all_in_cost_pct > MAX_ALL_IN_COST_PCT:
                self._cost_reported = True
                message = _constraint_message(LoanProduct, _COST_CONSTRAINT)
                current = probe.all_in_cost_pct.quantize(Decimal("0.01"))
                self.add_error(None, f"{message}（{_('当前')}：{current} %）")
        return cleaned

    def _get_validation_exclusions(self):
        exclude = super()._get_validation_exclusions()
        if getattr(self, "_cost_reported", False):
            exclude.add("annual_rate_pct")  # already reported above: skip the model's copy of the check
        return exclude


@admin.register(LoanProduct)
class LoanProductAdmin(admin.ModelAdmin):
    form = LoanProductAdminForm
    list_display = ("code", "name", "kind", "schedule_method", "annual_rate", "penalty_markup", "fee_rate",
                    "all_in_cost", "grace_days", "auto_debit", "is_active")
    list_filter = ("kind", "schedule_method", "auto_debit", "is_active")
    search_fields = ("code", "name")
    search_help_text = _("按产品代码或名称搜索")
    readonly_fields = ("all_in_cost",)
    fieldsets = (
        (None, {"fields": ("code", "name", "kind", "is_active")}),
        (_("定价（综合年化成本不得超过 24%）"), {"fields": (
            "schedule_method", "allowed_methods", "annual_rate_pct", "fee_rate_pct", "penalty_markup_pct",
            "compound_interest", "all_in_cost")}),
        (_("期限、宽限与节假日"), {"fields": (
            "min_months", "max_months", "grace_days", "holiday_rule", "grace_end_rolls_to_working_day")}),
        (_("还款与催收"), {"fields": (
            "auto_debit", "allocation_order", "prepayment_rule", "prepayment_fee_pct", "retry_policy",
            "collection_strategy")}),
        (_("担保"), {"fields": ("secured", "collateral_label")}),
    )

    @admin.display(description=_("年利率"), ordering="annual_rate_pct")
    def annual_rate(self, obj):
        return pct_display(obj.annual_rate_pct)

    @admin.display(description=_("罚息上浮"), ordering="penalty_markup_pct")
    def penalty_markup(self, obj):
        return pct_display(obj.penalty_markup_pct)

    @admin.display(description=_("每期费率"), ordering="fee_rate_pct")
    def fee_rate(self, obj):
        return pct_display(obj.fee_rate_pct)

    @admin.display(description=_("综合年化成本"))
    def all_in_cost(self, obj):
        return pct_display(obj.all_in_cost_pct)

    def has_delete_permission(self, request, obj=None):
        return False  # products are deactivated (is_active), never deleted: loans and history refer to them


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "kind", "profile_version", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("code", "name")
    search_help_text = _("按渠道代码或名称搜索")

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead: mandates and files refer to the channel


# --------------------------------------------------------------------------------------------------
# Borrowers and loans
# --------------------------------------------------------------------------------------------------

class BorrowerLoanInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = Loan
    fields = ("contract_no", "product", "principal_cny", "status", "dpd", "disbursed_on", "settled_on")
    principal_cny = money_display("principal", _("本金"))
    verbose_name_plural = _("贷款")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("product")


@admin.register(Borrower)
class BorrowerAdmin(PersonalDataAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = ("id", "name", "phone_masked", "id_number_masked", "email", "language", "created_at")
    search_fields = ("name", "phone", "=id_number")
    search_help_text = _("按姓名、手机号搜索，或输入完整身份证号")
    raw_id_fields = ("user",)
    readonly_fields = ("created_at",)
    fields = ("name", "phone", "id_number", "email", "language", "user", "created_at")
    personal_fields = {"phone": "phone_masked", "id_number": "id_number_masked"}
    inlines = (BorrowerLoanInline,)

    @admin.display(description=_("手机号"))
    def phone_masked(self, obj):
        return obj.masked_phone

    @admin.display(description=_("身份证号"))
    def id_number_masked(self, obj):
        return obj.masked_id_number

    def has_delete_permission(self, request, obj=None):
        return False  # loans, mandates and retention rules refer to the borrower


class InstalmentInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = Instalment
    ordering = ("seq", "id")
    fields = ("seq", "period_start", "due_date", "principal_due_cny", "interest_due_cny", "fee_due_cny",
              "penalty_accrued_cny", "total_paid_cny", "total_outstanding_cny", "status", "paid_on")
    principal_due_cny = money_display("principal_due", _("应还本金"))
    interest_due_cny = money_display("interest_due", _("应还利息"))
    fee_due_cny = money_display("fee_due", _("应还费用"))
    penalty_accrued_cny = money_display("penalty_accrued", _("罚息"))
    total_paid_cny = money_display("total_paid", _("已还"), ordering=False)
    total_outstanding_cny = money_display("total_outstanding", _("未还"), ordering=False)


class MandateInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = Mandate
    fk_name = "loan"
    fields = ("agreement_no", "channel", "account_masked", "account_name", "status", "signed_at",
              "cancelled_at")

    @admin.display(description=_("账号"))
    def account_masked(self, obj):
        return obj.masked_account

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("channel")


class PaymentInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = Payment
    ordering = ("-value_date", "-id")
    fields = ("reference", "channel", "amount_cny", "applied_amount_cny", "credited_amount_cny", "value_date",
              "prepay_mode", "reversed", "created_at")
    amount_cny = money_display("amount", _("金额"))
    applied_amount_cny = money_display("applied_amount", _("冲抵应还"))
    credited_amount_cny = money_display("credited_amount", _("转入挂账"))


@admin.register(Loan)
class LoanAdmin(BigTableAdminMixin, admin.ModelAdmin):
    """Loans are booked, repaid and settled through services: nothing money-related is edited here."""

    list_display = ("contract_no", "borrower_name", "product", "principal_cny", "annual_rate", "term_months",
                    "status", "dpd", "credit_balance_cny", "disbursed_on")
    list_select_related = ("borrower", "product")
    list_filter = ("status", "product", "schedule_method")
    search_fields = ("contract_no", "borrower__name", "borrower__phone")
    search_help_text = _CONTRACT_SEARCH_HELP
    fieldsets = (
        (None, {"fields": ("contract_no", "product", "borrower", "status", "dpd", "settled_on")}),
        (_("合同条款"), {"fields": ("principal_cny", "annual_rate", "fee_rate", "schedule_method",
                                   "term_months", "disbursed_on", "repayment_day")}),
        (_("余额与批处理"), {"fields": ("credit_balance_cny", "last_business_date", "created_at")}),
    )
    readonly_fields = ("contract_no", "product", "borrower", "status", "dpd", "settled_on", "principal_cny",
                       "annual_rate", "fee_rate", "schedule_method", "term_months", "disbursed_on",
                       "repayment_day", "credit_balance_cny", "last_business_date", "created_at")
    inlines = (InstalmentInline, MandateInline, PaymentInline, NoticeInline)

    principal_cny = money_display("principal", _("本金"))
    credit_balance_cny = money_display("credit_balance", _("挂账余额"))

    @admin.display(description=_("借款人"), ordering="borrower__name")
    def borrower_name(self, obj):
        return obj.borrower.name

    @admin.display(description=_("年利率"), ordering="annual_rate_pct")
    def annual_rate(self, obj):
        return pct_display(obj.annual_rate_pct)

    @admin.display(description=_("每期费率"), ordering="fee_rate_pct")
    def fee_rate(self, obj):
        return pct_display(obj.fee_rate_pct)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Instalment)
class InstalmentAdmin(ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    """Schedule lines change only through payments, waivers, accrual and rescheduling services."""

    list_display = ("loan", "seq", "due_date", "principal_due_cny", "interest_due_cny", "fee_due_cny",
                    "penalty_accrued_cny", "total_outstanding_cny", "status", "billed", "paid_on")
    list_select_related = ("loan",)
    list_filter = ("status", "billed")
    search_fields = ("loan__contract_no", "loan__borrower__name", "loan__borrower__phone")
    search_help_text = _CONTRACT_SEARCH_HELP
    ordering = ("-id",)  # the primary-key index: Meta's (loan_id, seq) would sort the whole table
    fieldsets = (
        (None, {"fields": ("loan", "seq", "period_start", "due_date", "status", "billed", "paid_on",
                           "penalty_accrued_through")}),
        (_("应还"), {"fields": ("principal_due_cny", "interest_due_cny", "fee_due_cny", "penalty_accrued_cny",
                               "compound_accrued_cny")}),
        (_("已还"), {"fields": ("principal_paid_cny", "interest_paid_cny", "fee_paid_cny", "penalty_paid_cny",
                               "compound_paid_cny")}),
        (_("减免"), {"fields": ("principal_waived_cny", "interest_waived_cny", "fee_waived_cny",
                               "penalty_waived_cny", "compound_waived_cny")}),
        (_("合计"), {"fields": ("total_due_cny", "total_paid_cny", "total_outstanding_cny")}),
    )

    principal_due_cny = money_display("principal_due", _("应还本金"))
    interest_due_cny = money_display("interest_due", _("应还利息"))
    fee_due_cny = money_display("fee_due", _("应还费用"))
    penalty_accrued_cny = money_display("penalty_accrued", _("罚息"))
    compound_accrued_cny = money_display("compound_accrued", _("复利"))
    principal_paid_cny = money_display("principal_paid", _("已还本金"))
    interest_paid_cny = money_display("interest_paid", _("已还利息"))
    fee_paid_cny = money_display("fee_paid", _("已还费用"))
    penalty_paid_cny = money_display("penalty_paid", _("已还罚息"))
    compound_paid_cny = money_display("compound_paid", _("已还复利"))
    principal_waived_cny = money_display("principal_waived", _("减免本金"))
    interest_waived_cny = money_display("interest_waived", _("减免利息"))
    fee_waived_cny = money_display("fee_waived", _("减免费用"))
    penalty_waived_cny = money_display("penalty_waived", _("减免罚息"))
    compound_waived_cny = money_display("compound_waived", _("减免复利"))
    total_due_cny = money_display("total_due", _("应还合计"), ordering=False)
    total_paid_cny = money_display("total_paid", _("已还合计"), ordering=False)
    total_outstanding_cny = money_display("total_outstanding", _("未还合计"), ordering=False)


@admin.register(Mandate)
class MandateAdmin(PersonalDataAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    """Mandates are signed, activated, suspended and cancelled through services (with cause and reason);
    ops may only adjust the debit limits here."""

    list_display = ("agreement_no", "loan", "borrower_name", "channel", "account_masked", "status", "signed_at")
    list_select_related = ("loan", "borrower", "channel")
    list_filter = ("status", "channel")
    search_fields = ("agreement_no", "loan__contract_no", "borrower__name", "borrower__phone")
    search_help_text = _("按协议号、合同号、借款人姓名或手机号搜索")
    fields = ("agreement_no", "loan", "borrower", "channel", "account_no", "account_name", "bank_code", "status",
              "single_limit", "daily_limit", "signed_at", "activated_at", "suspended_at", "suspend_reason",
              "cancelled_at", "cancel_cause", "cancel_reason", "cancelled_by")
    readonly_fields = ("agreement_no", "loan", "borrower", "channel", "account_no", "account_name", "bank_code",
                       "status", "signed_at", "activated_at", "suspended_at", "suspend_reason", "cancelled_at",
                       "cancel_cause", "cancel_reason", "cancelled_by")
    personal_fields = {"account_no": "account_masked"}

    @admin.display(description=_("借款人"), ordering="borrower__name")
    def borrower_name(self, obj):
        return obj.borrower.name

    @admin.display(description=_("账号"))
    def account_masked(self, obj):
        return mask_account(obj.account_no)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --------------------------------------------------------------------------------------------------
# Ledger and records: read-only
# --------------------------------------------------------------------------------------------------

# an allocation's components, in the waterfall's default order, as money
PARTS = tuple(f"{c}_cny" for c in COMPONENTS)
PART_DISPLAYS = tuple(money_display(c, Allocation._meta.get_field(c).verbose_name) for c in COMPONENTS)


class AllocationInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = Allocation
    fk_name = "payment"
    fields = ("instalment", *PARTS, "amount_cny", "entry")
    amount_cny = money_display("amount", _("合计"))
    penalty_cny, compound_cny, fee_cny, interest_cny, principal_cny = PART_DISPLAYS

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("instalment", "entry")


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = ("reference", "loan", "channel", "amount_cny", "applied_amount_cny", "credited_amount_cny",
                    "value_date", "prepay_mode", "reversed", "created_at")
    list_select_related = ("loan",)
    list_filter = ("channel", "prepay_mode", "reversed")
    search_fields = ("reference", "loan__contract_no", "loan__borrower__name", "loan__borrower__phone")
    search_help_text = _("按还款流水号、合同号、借款人姓名或手机号搜索")
    fields = ("reference", "loan", "channel", "amount_cny", "applied_amount_cny", "credited_amount_cny",
              "value_date", "prepay_mode", "entry", "reversed", "created_at", "created_by", "note")
    inlines = (AllocationInline,)

    amount_cny = money_display("amount", _("金额"))
    applied_amount_cny = money_display("applied_amount", _("冲抵应还"))
    credited_amount_cny = money_display("credited_amount", _("转入挂账"))


@admin.register(Allocation)
class AllocationAdmin(ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = ("id", "entry", "payment", "instalment", *PARTS, "amount_cny")
    list_select_related = ("entry", "payment", "instalment")
    list_filter = (ComponentListFilter,)
    search_fields = ("payment__reference", "instalment__loan__contract_no")
    search_help_text = _("按还款流水号或合同号搜索")
    fields = ("entry", "payment", "instalment", *PARTS, "amount_cny")
    amount_cny = money_display("amount", _("合计"))
    penalty_cny, compound_cny, fee_cny, interest_cny, principal_cny = PART_DISPLAYS


class JournalLineInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = JournalLine
    fields = ("account", "loan", "debit_cny", "credit_cny")
    show_change_link = False

    debit_cny = debit_display
    credit_cny = credit_display

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("loan")


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = ("id", "kind", "loan", "value_date", "memo", "idempotency_key", "reverses", "created_at")
    list_select_related = ("loan", "reverses")
    list_filter = ("kind",)
    search_fields = ("idempotency_key", "loan__contract_no")
    search_help_text = _("按幂等键或合同号搜索")
    fields = ("kind", "loan", "value_date", "idempotency_key", "memo", "reverses", "created_at", "created_by")
    inlines = (JournalLineInline,)
    # an entry a bank file's chunk shares holds tens of thousands of lines: its page sums them per account and
    # links to the lines' list instead of rendering each one
    MAX_INLINE_LINES = 100

    def _line_count(self, obj) -> int:
        if not hasattr(obj, "_line_count"):
            obj._line_count = obj.lines.count()
        return obj._line_count

    def get_inlines(self, request, obj):
        return () if obj is not None and self._line_count(obj) > self.MAX_INLINE_LINES else self.inlines

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return (*fields, "lines_by_account") if not self.get_inlines(request, obj) else fields

    @admin.display(description=_("分录行"))
    def lines_by_account(self, obj):
        rows = obj.lines.values("account").annotate(n=Count("id"), total=Sum("amount")).order_by("account")
        labels = dict(Account.choices)
        items = format_html_join("", "<li>{}</li>", (
            (_("%(account)s：%(n)s 行，%(side)s %(amount)s") % {
                "account": labels.get(r["account"], r["account"]), "n": r["n"],
                "side": _("借方") if r["total"] >= 0 else _("贷方"), "amount": format_cny(abs(r["total"]))},)
            for r in rows))
        url = reverse("admin:servicing_journalline_changelist") + f"?entry__id__exact={obj.pk}"
        return format_html('<ul>{}</ul><a href="{}">{}</a>', items, url,
                           _("查看全部 %(n)s 行") % {"n": self._line_count(obj)})


@admin.register(JournalLine)
class JournalLineAdmin(ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = ("id", "entry", "account", "loan", "debit_cny", "credit_cny")
    list_select_related = ("entry", "loan")
    list_filter = ("account",)
    search_fields = ("loan__contract_no", "entry__idempotency_key")
    search_help_text = _("按合同号或分录幂等键搜索")
    fields = ("entry", "account", "loan", "amount_cny")
    amount_cny = money_display("amount", _("金额（正为借，负为贷）"))

    debit_cny = debit_display
    credit_cny = credit_display


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = ("at", "action", "object_type", "object_id", "actor", "actor_label", "reason")
    list_select_related = ("actor",)
    search_fields = ("object_id", "action", "actor__username", "actor_label")
    search_help_text = _("按对象编号、操作、操作人搜索")
    fields = ("at", "actor", "actor_label", "action", "object_type", "object_id", "reason", "data")


@admin.register(BusinessDayRun)
class BusinessDayRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("business_date", "step", "started_at", "finished_at", "duration")
    list_filter = ("step",)
    date_hierarchy = "business_date"
    fields = ("business_date", "step", "started_at", "finished_at", "duration", "stats")

    @admin.display(description=_("耗时"))
    def duration(self, obj):
        if obj.finished_at is None or obj.started_at is None:
            return _("进行中")
        return str(obj.finished_at - obj.started_at).split(".")[0]


# --------------------------------------------------------------------------------------------------
# Business calendar: maintained by ops
# --------------------------------------------------------------------------------------------------

_WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


class CalendarYearFilter(admin.SimpleListFilter):
    title = _("年份")
    parameter_name = "year"

    def lookups(self, request, model_admin):
        years = model_admin.get_queryset(request).dates("date", "year", order="DESC")
        return [(str(d.year), str(d.year)) for d in years]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(date__year=int(value))
        return queryset


@admin.register(BusinessCalendarDay)
class BusinessCalendarDayAdmin(admin.ModelAdmin):
    """Ops correct the calendar here when the State Council publishes a year's arrangement.

    Every edit becomes ``source=manual, provisional=False``: a re-seed never overwrites it.
    """

    list_display = ("date", "weekday", "working", "name", "source", "provisional")
    list_filter = (CalendarYearFilter, "is_working_day", "provisional", "source")
    search_fields = ("name",)
    search_help_text = _("按节假日名称搜索")
    ordering = ("date",)
    list_per_page = 100
    fields = ("date", "weekday", "is_working_day", "name", "source", "provisional")
    actions = ("mark_working", "mark_holiday", "confirm_days")

    @admin.display(description=_("星期"))
    def weekday(self, obj):
        return _WEEKDAYS[obj.date.weekday()] if obj.date else ""

    @admin.display(description=_("工作日"), boolean=True, ordering="is_working_day")
    def working(self, obj):
        return obj.is_working_day

    def get_readonly_fields(self, request, obj=None):
        readonly = ["weekday", "source", "provisional"]
        if obj is not None:
            readonly.insert(0, "date")  # the primary key: changing it would create another day
        return readonly

    def has_delete_permission(self, request, obj=None):
        return False  # a missing day falls back to weekends-only: correct it instead

    def save_model(self, request, obj, form, change):
        obj.source = BusinessCalendarDay.Source.MANUAL
        obj.provisional = False
        super().save_model(request, obj, form, change)
        transaction.on_commit(calendar_cache_clear)

    def _manual_update(self, request, queryset, message, **values):
        n = queryset.update(source=BusinessCalendarDay.Source.MANUAL, provisional=False, **values)
        transaction.on_commit(calendar_cache_clear)
        self.message_user(request, message % {"n": n}, messages.SUCCESS)

    @admin.action(description=_("设为工作日（人工维护）"), permissions=["change"])
    def mark_working(self, request, queryset):
        self._manual_update(request, queryset, _("%(n)d 天已设为工作日"), is_working_day=True)

    @admin.action(description=_("设为休息日（人工维护）"), permissions=["change"])
    def mark_holiday(self, request, queryset):
        self._manual_update(request, queryset, _("%(n)d 天已设为休息日"), is_working_day=False)

    @admin.action(description=_("确认为官方安排（取消推测标记）"), permissions=["change"])
    def confirm_days(self, request, queryset):
        self._manual_update(request, queryset, _("%(n)d 天已确认为官方安排"))

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET":
            years = provisional_years()
            if years:
                messages.warning(request, format_html(
                    "{}：{}。{}",
                    _("以下年度的工作日历为推测（仅周末与法定节假日，未含调休安排）"),
                    "、".join(str(y) for y in years),
                    _("国务院公布安排后请逐日核对并“确认为官方安排”。"),
                ))
        return super().changelist_view(request, extra_context)


# --------------------------------------------------------------------------------------------------
# Change history (django-pghistory event tables): read-only
# --------------------------------------------------------------------------------------------------

class EventAdmin(ReadOnlyAdminMixin, BigTableAdminMixin, PersonalDataAdminMixin, admin.ModelAdmin):
    """Trigger-captured versions of products, loans, instalments and mandates (who changed what, when)."""

    list_display = ("pgh_id", "pgh_created_at", "pgh_label", "pgh_obj", "pgh_context_id")
    list_select_related = ("pgh_obj",)
    list_filter = ("pgh_label",)
    ordering = ("-pgh_id",)
    search_help_text = _("按对象编号搜索")

    @admin.display(description=_("账号"))
    def account_masked(self, obj):
        return mask_account(obj.account_no)

    def get_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


_EVENT_SEARCH = {
    "LoanProductEvent": ("pgh_obj__code",),
    "LoanEvent": ("pgh_obj__contract_no",),
    "InstalmentEvent": ("pgh_obj__loan__contract_no",),
    "MandateEvent": ("pgh_obj__agreement_no", "pgh_obj__loan__contract_no"),
}
_EVENT_PERSONAL = {"MandateEvent": {"account_no": "account_masked"}}

for _name, _search in _EVENT_SEARCH.items():
    _model = apps.get_model("servicing", _name)
    admin.site.register(_model, type(f"{_name}Admin", (EventAdmin,), {
        "search_fields": _search,
        "personal_fields": _EVENT_PERSONAL.get(_name, {}),
    }))
from servicing import admin_debits  # noqa: E402,F401
