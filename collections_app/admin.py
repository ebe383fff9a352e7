"""Collections in the ops console. Thin: lists and detail pages; every change goes through a service.

Collectors see only the cases assigned to them (the changelist is filtered; another collector's case page
is a 404) and only masked personal data; supervisors see everything and decide the approval queues.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import Http404
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from servicing.admin_utils import BigTableAdminMixin, ReadOnlyAdminMixin, ReadOnlyInlineMixin, money_display
from servicing.services import audit

from . import selectors
from .models import (
    Agency,
    CaseEvent,
    CollectionCase,
    CollectorProfile,
    Complaint,
    ContactAttempt,
    ContactPerson,
    EscalationRequest,
    HardshipArrangement,
    PromiseToPay,
    StrategyStage,
    WaiverRequest,
)
from .services.cases import CollectionsError, can_access_case, decide_escalation, is_supervisor
from .services.work import decide_hardship, decide_waiver


class CaseScopedMixin:
    """Rows belonging to a case: a collector sees those of their own cases only."""

    case_path = "case"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if is_supervisor(request.user) or request.user.groups.filter(name="auditor").exists():
            return qs
        return qs.filter(**{f"{self.case_path}__in": selectors.visible_cases(request.user)})


def _decide(modeladmin, request, queryset, fn, approve: bool, key: str):
    done = 0
    for obj in queryset:
        try:
            fn(**{key: obj}, approve=approve, actor=request.user, on_date=selectors.current_business_date())
            done += 1
        except (CollectionsError, ValueError) as exc:
            modeladmin.message_user(request, f"{obj}: {exc}", messages.ERROR)
    if done:
        modeladmin.message_user(request, _("已处理 %(n)s 条") % {"n": done}, messages.SUCCESS)


class CaseEventInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = CaseEvent
    fields = ["at", "kind", "detail", "actor"]
    show_change_link = False
    ordering = ["at", "id"]


@admin.register(CollectionCase)
class CollectionCaseAdmin(BigTableAdminMixin, admin.ModelAdmin):
    list_display = ["id", "contract", "borrower_masked", "status", "stage", "bucket", "dpd",
                    money_display("overdue_total", _("逾期合计")), "priority", "reasons", "assigned_to",
                    "next_action_on"]
    list_filter = ["status", "stage", "bucket", "pause_reason"]
    search_fields = ["loan__contract_no"]
    ordering = ["-priority", "id"]
    inlines = [CaseEventInline]
    readonly_fields = ["contract", "borrower_masked", "phone_masked", "id_masked", "status", "pause_reason",
                       "opened_on", "closed_on", "close_reason", "dpd", "bucket", "stage", "stage_since",
                       "overdue_principal", "overdue_interest", "overdue_fee", "overdue_penalty", "overdue_compound",
                       "overdue_total", "assigned_to", "agency", "agency_from", "next_action_on", "broken_promises",
                       "prior_cures", "priority", "reasons", "updated_on"]
    fields = readonly_fields

    def get_queryset(self, request):
        return selectors.visible_cases(request.user).select_related("loan", "borrower", "assigned_to")

    def has_view_permission(self, request, obj=None):
        allowed = super().has_view_permission(request, obj)
        return allowed and (obj is None or can_access_case(request.user, obj))

    def has_change_permission(self, request, obj=None):
        return False  # changes go through services (contacts, promises, assignment …)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.get_queryset(request).filter(pk=object_id).exists():
            raise Http404(_("案件不存在"))
        return super().change_view(request, object_id, form_url, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        if not self.get_queryset(request).filter(pk=object_id).exists():
            raise Http404(_("案件不存在"))
        return super().history_view(request, object_id, extra_context)

    @admin.display(description=_("合同号"), ordering="loan__contract_no")
    def contract(self, obj):
        return obj.loan.masked_contract_no

    @admin.display(description=_("借款人"))
    def borrower_masked(self, obj):
        return obj.borrower.masked_name

    @admin.display(description=_("手机号"))
    def phone_masked(self, obj):
        return obj.borrower.masked_phone  # the full number only reaches the softphone (dial)

    @admin.display(description=_("身份证号"))
    def id_masked(self, obj):
        return obj.borrower.masked_id_number

    @admin.display(description=_("优先级依据"))
    def reasons(self, obj):
        return selectors.reasons_text(obj)


@admin.register(StrategyStage)
class StrategyStageAdmin(admin.ModelAdmin):
    list_display = ["strategy", "stage_no", "name", "entry_dpd", "after_grace", "cadence_days", "requires_approval",
                    "is_active"]
    list_filter = ["strategy"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit.record("collections.strategy_changed", obj, actor=request.user, changed=",".join(form.changed_data))


@admin.register(ContactAttempt)
class ContactAttemptAdmin(CaseScopedMixin, ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = ["at", "case", "channel", "target", "outcome", "allowed", "refused_rule", "override_reason",
                    "actor", "automatic"]
    list_filter = ["channel", "allowed", "refused_rule", "automatic"]
    exclude = ["number"]


@admin.register(PromiseToPay)
class PromiseToPayAdmin(CaseScopedMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["case", "amount", "promised_on", "due_date", "status", "paid_amount", "created_by"]
    list_filter = ["status"]


@admin.register(EscalationRequest)
class EscalationRequestAdmin(CaseScopedMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["case", "to_stage", "status", "requested_on", "requested_by", "decided_by", "decided_on"]
    list_filter = ["status"]
    actions = ["approve", "reject"]

    @admin.action(description=_("批准升级（主管）"))
    def approve(self, request, queryset):
        _decide(self, request, queryset, decide_escalation, True, "request")

    @admin.action(description=_("驳回升级"))
    def reject(self, request, queryset):
        _decide(self, request, queryset, decide_escalation, False, "request")


@admin.register(HardshipArrangement)
class HardshipArrangementAdmin(CaseScopedMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["case", "kind", "status", "n_instalments", "defer_to", "requested_by", "decided_by", "decided_on"]
    list_filter = ["kind", "status"]
    actions = ["approve", "reject"]

    @admin.action(description=_("批准困难救助（主管）"))
    def approve(self, request, queryset):
        _decide(self, request, queryset, decide_hardship, True, "arrangement")

    @admin.action(description=_("驳回困难救助"))
    def reject(self, request, queryset):
        _decide(self, request, queryset, decide_hardship, False, "arrangement")


@admin.register(WaiverRequest)
class WaiverRequestAdmin(CaseScopedMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["case", "component", "amount", "status", "requested_by", "decided_by", "decided_on"]
    list_filter = ["status", "component"]
    actions = ["approve", "reject"]

    @admin.action(description=_("批准减免（复核人）"))
    def approve(self, request, queryset):
        _decide(self, request, queryset, decide_waiver, True, "request")

    @admin.action(description=_("驳回减免"))
    def reject(self, request, queryset):
        _decide(self, request, queryset, decide_waiver, False, "request")


@admin.register(Complaint)
class ComplaintAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["reference", "subject", "status", "filed_on", "due_display", "handler", "root_cause",
                    "answered_on"]
    list_filter = ["status", "root_cause", "source"]
    search_fields = ["reference", "loan__contract_no"]
    exclude = ["description"]

    @admin.display(description=_("答复期限"), ordering="due_on")
    def due_display(self, obj):
        as_of = selectors.current_business_date()
        if obj.is_overdue(as_of):
            return format_html('<span class="complaint-overdue" style="color:#c00;font-weight:bold">{} ({})</span>',
                               obj.due_on, _("已超期"))
        return str(obj.due_on)


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "on_published_list", "is_active"]


@admin.register(CollectorProfile)
class CollectorProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "buckets", "max_open_cases", "agency", "is_active"]


@admin.register(ContactPerson)
class ContactPersonAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["borrower", "masked", "relation", "refused"]
    exclude = ["phone", "name"]

    @admin.display(description=_("联系人"))
    def masked(self, obj):
        return str(obj)
