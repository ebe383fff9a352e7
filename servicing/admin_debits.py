"""Ops console for the debit pipeline: batches, debits, result files (upload → preview → confirm),
reconciliation and missed-debit exceptions to resolve, retry plans, pre-due warnings, incidents.

Everything that changes state goes through services/debits; these admins only list, filter and call them.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from servicing.admin_utils import BigTableAdminMixin, ReadOnlyAdminMixin, money_display
from servicing.models import (
    Channel,
    Debit,
    DebitBatch,
    DebitSkip,
    EarlierAnswer,
    GatewayPayment,
    Incident,
    IncidentLoan,
    MissedDebitException,
    PreDueWarning,
    ReconciliationException,
    ResultFile,
    RetryState,
)
from servicing.services.debits import incidents, resolution
from servicing.services.debits.profiles import ProfileError, validate_profile
from servicing.services.debits.results import import_debit_results

# --------------------------------------------------------------------------------------------------
# Channel profiles: validated when edited in the admin (ChannelAdmin lives in admin.py)
# --------------------------------------------------------------------------------------------------

class ChannelProfileForm(forms.ModelForm):
    class Meta:
        model = Channel
        fields = ("code", "name", "kind", "profile", "profile_version", "is_active")

    def clean_profile(self):
        profile = self.cleaned_data.get("profile")
        if self.cleaned_data.get("kind", Channel.Kind.BANK) == Channel.Kind.GATEWAY and not profile:
            return profile
        try:
            validate_profile(profile)
        except ProfileError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return profile


_channel_admin = admin.site._registry.get(Channel)
if _channel_admin is not None and _channel_admin.form is forms.ModelForm:
    _channel_admin.form = ChannelProfileForm


# --------------------------------------------------------------------------------------------------
# Batches and debits
# --------------------------------------------------------------------------------------------------

@admin.register(DebitBatch)
class DebitBatchAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("reference", "channel", "business_date", "status", "control_count", "control_amount_cny",
                    "exported_at")
    list_filter = ("status", "channel")
    date_hierarchy = "business_date"
    search_fields = ("reference",)
    control_amount_cny = money_display("control_amount", _("控制金额"))


class EarlierAnswerInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The answers a later one replaced; the current one is on the debit."""

    model = EarlierAnswer
    fields = ("business_date", "outcome", "raw_status", "raw_code", "raw_message", "category", "action",
              "result_file", "line_no")
    extra = 0


class ResolveUnknownForm(forms.Form):
    outcome = forms.ChoiceField(choices=[("succeeded", _("扣款成功")), ("failed", _("扣款失败"))])
    category = forms.CharField(required=False, help_text=_("失败时填写分类，如 insufficient_funds"))
    on_date = forms.DateField(initial=timezone.localdate)
    note = forms.CharField(max_length=200)


class ReturnDebitForm(forms.Form):
    on_date = forms.DateField(label=_("退回日期"), initial=timezone.localdate)
    reason = forms.CharField(label=_("银行退回原因"), max_length=200)


@admin.register(Debit)
class DebitAdmin(ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = ("reference", "loan", "due_date", "attempt", "kind", "amount_cny", "status", "category",
                    "result_code", "batch")
    list_filter = ("status", "kind", "category")
    list_select_related = ("loan", "batch")
    search_fields = ("=reference", "loan__contract_no")
    raw_id_fields = ("loan", "mandate", "instalment", "payment", "batch")
    inlines = (EarlierAnswerInline,)
    amount_cny = money_display("amount", _("金额"))
    change_form_template = "admin/servicing/debit/change_form.html"

    def get_urls(self):
        return [path("<int:pk>/resolve/", self.admin_site.admin_view(self.resolve_view),
                     name="servicing_debit_resolve"),
                path("<int:pk>/return/", self.admin_site.admin_view(self.return_view),
                     name="servicing_debit_return"), *super().get_urls()]

    def _resolution_form(self, request, pk, form_class, title, act):
        """Both resolutions move money: ops or supervisors only, the service does the work and the audit."""
        if not request.user.has_perm("console.resolve_exception"):
            raise PermissionDenied
        debit = get_object_or_404(Debit, pk=pk)
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                act(debit, form.cleaned_data)
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, _("已处理"))
                return HttpResponseRedirect(reverse("admin:servicing_debit_change", args=[pk]))
        return render(request, "admin/servicing/debit_form.html",
                      {**self.admin_site.each_context(request), "form": form, "debit": debit, "title": title})

    def resolve_view(self, request, pk):
        return self._resolution_form(
            request, pk, ResolveUnknownForm, _("处理结果未明的扣款"),
            lambda debit, data: resolution.resolve_unknown_debit(
                debit, outcome=data["outcome"], category=data["category"], on_date=data["on_date"],
                note=data["note"], user=request.user))

    def return_view(self, request, pk):
        return self._resolution_form(
            request, pk, ReturnDebitForm, _("银行退回已成功的扣款（冲正还款）"),
            lambda debit, data: resolution.return_debit(debit, on_date=data["on_date"], reason=data["reason"],
                                                        user=request.user))


@admin.register(RetryState)
class RetryStateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("instalment", "loan", "status", "failures", "retries_used", "next_retry_on", "last_category")
    list_filter = ("status", "last_category")
    raw_id_fields = ("instalment", "loan", "last_debit")


@admin.register(DebitSkip)
class DebitSkipAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("loan", "business_date", "reason", "detail", "channel")
    list_filter = ("reason",)
    date_hierarchy = "business_date"
    search_fields = ("loan__contract_no",)


@admin.register(PreDueWarning)
class PreDueWarningAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("loan", "due_date", "reason", "amount_cny", "checked_on")
    list_filter = ("reason",)
    date_hierarchy = "due_date"
    search_fields = ("loan__contract_no",)
    amount_cny = money_display("amount", _("应还"))


# --------------------------------------------------------------------------------------------------
# Result files: upload → preview (dry run of the same service) → confirm
# --------------------------------------------------------------------------------------------------

class ResultUploadForm(forms.Form):
    channel = forms.ModelChoiceField(queryset=Channel.objects.filter(kind="bank", is_active=True))
    file = forms.FileField()


@admin.register(ResultFile)
class ResultFileAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "channel", "status", "business_date", "rows", "created_at", "imported_by")
    list_filter = ("status", "channel")
    readonly_fields = ("summary_pretty",)
    change_list_template = "admin/servicing/resultfile_change_list.html"

    @admin.display(description=_("行数"))
    def rows(self, obj):
        return obj.summary.get("rows")

    @admin.display(description=_("导入摘要"))
    def summary_pretty(self, obj):
        return json.dumps(obj.summary, ensure_ascii=False, indent=1)

    def get_urls(self):
        return [path("upload/", self.admin_site.admin_view(self.upload_view), name="servicing_resultfile_upload"),
                *super().get_urls()]

    def upload_view(self, request):
        """Step 1 uploads and previews (dry run); step 2 confirms the same stored file."""
        if not request.user.has_perm("console.upload_debit_results"):  # the same capability as the API's
            raise PermissionDenied
        context = {**self.admin_site.each_context(request), "title": _("上传回盘文件")}
        if request.method == "POST" and request.POST.get("confirm"):
            channel = get_object_or_404(Channel, pk=request.POST["channel"])
            stored = Path(request.session.pop("debit_upload_path", ""))
            if not stored.is_file():
                messages.error(request, _("上传已过期，请重新上传"))
                return HttpResponseRedirect(reverse("admin:servicing_resultfile_upload"))
            summary = import_debit_results(stored, channel=channel, name=request.POST.get("name"),
                                           user=request.user)
            level = messages.ERROR if summary["status"] == "rejected" else messages.SUCCESS
            messages.add_message(request, level, f"{summary['status']}: {summary['rows']} rows, "
                                                 f"{summary['exceptions']} exceptions")
            return HttpResponseRedirect(reverse("admin:servicing_resultfile_changelist"))
        form = ResultUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            with tempfile.NamedTemporaryFile(delete=False, suffix="_" + Path(upload.name).name) as tmp:
                for chunk in upload.chunks():
                    tmp.write(chunk)
            request.session["debit_upload_path"] = tmp.name
            preview = import_debit_results(Path(tmp.name), channel=form.cleaned_data["channel"], name=upload.name,
                                           user=request.user, dry_run=True)
            context.update(preview=preview, preview_json=json.dumps(preview, ensure_ascii=False, indent=1),
                           channel=form.cleaned_data["channel"], name=upload.name)
        context["form"] = form
        return render(request, "admin/servicing/resultfile_upload.html", context)


# --------------------------------------------------------------------------------------------------
# Exceptions to resolve
# --------------------------------------------------------------------------------------------------

@admin.action(description=_("标记为已处理（已人工核实）"))
def mark_resolved(modeladmin, request, queryset):
    for exc in queryset.filter(status="open"):
        resolution.resolve_exception(exc, note=f"resolved in admin by {request.user}", user=request.user)


@admin.register(ReconciliationException)
class ReconciliationExceptionAdmin(admin.ModelAdmin):
    list_display = ("created_at", "result_file", "line_no", "reason_code", "reason", "status", "loan")
    list_filter = ("status", "reason_code")
    search_fields = ("raw_text", "loan__contract_no")
    readonly_fields = ("result_file", "debit", "loan", "line_no", "raw_text", "reason_code", "reason",
                       "resolved_by", "resolved_at", "created_at", "status")
    fields = (*readonly_fields, "resolution_note")
    actions = (mark_resolved,)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if obj.status == "open" and obj.resolution_note:
            resolution.resolve_exception(obj, note=obj.resolution_note, user=request.user)


@admin.register(MissedDebitException)
class MissedDebitExceptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("business_date", "loan", "instalment", "reason", "status", "resolved_at")
    fields = ("instalment", "loan", "business_date", "reason", "status", "resolved_by", "resolved_at",
              "resolution_note")  # the inherited ResolvableException fields would otherwise come first
    list_filter = ("status", "reason")
    search_fields = ("loan__contract_no",)
    actions = (mark_resolved,)

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("servicing.change_misseddebitexception")


# --------------------------------------------------------------------------------------------------
# Incidents
# --------------------------------------------------------------------------------------------------

class IncidentLoanInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = IncidentLoan
    fields = ("loan", "debit", "waived_amount", "represented_debit")
    raw_id_fields = ("loan", "debit", "represented_debit")
    extra = 0


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ("reference", "channel", "status", "automatic", "window_start", "window_end", "waived_amount")
    list_filter = ("status", "channel", "automatic")
    fields = ("channel", "title", "window_start")
    inlines = (IncidentLoanInline,)
    actions = ("request_waiver", "approve_waiver", "close_today", "report")

    def get_readonly_fields(self, request, obj=None):
        return ("channel", "title", "window_start") if obj else ()

    def save_model(self, request, obj, form, change):
        if change:
            return
        created = incidents.open_incident(channel=obj.channel, window_start=obj.window_start, title=obj.title,
                                          user=request.user)
        obj.pk = created.pk

    def has_delete_permission(self, request, obj=None):
        return False

    # who may do what, as docs/permissions.md says: operations staff open an incident by hand and close it when the
    # channel is back; a maker requests the bulk waiver and a checker approves it (never the same person)
    def has_add_permission(self, request):
        return self.has_operate_permission(request)

    def has_operate_permission(self, request):
        return request.user.has_perm("console.resolve_exception")

    def has_request_permission(self, request):
        return request.user.has_perm("console.request_approval")

    def has_approve_permission(self, request):
        return request.user.has_perm("console.approve_approval")

    @admin.action(description=_("申请批量减免（待另一人审批）"), permissions=["request"])
    def request_waiver(self, request, queryset):
        for inc in queryset:
            try:
                incidents.request_waiver(inc, user=request.user)
                messages.success(request, f"{inc.reference}: " + _("已申请，待另一人审批"))
            except ValueError as exc:
                messages.error(request, str(exc))

    @admin.action(description=_("审批批量减免"), permissions=["approve"])
    def approve_waiver(self, request, queryset):
        for inc in queryset:
            try:
                total = incidents.approve_waiver(inc, user=request.user, on_date=timezone.localdate())
                messages.success(request, f"{inc.reference}: {total}")
            except ValueError as exc:
                messages.error(request, str(exc))

    @admin.action(description=_("渠道已恢复：今日重新扣款"), permissions=["operate"])
    def close_today(self, request, queryset):
        for inc in queryset.filter(status="open"):
            incidents.close_incident(inc, back_on=timezone.localdate(), user=request.user)

    @admin.action(description=_("事故报告（JSON）"))
    def report(self, request, queryset):
        return JsonResponse([incidents.incident_report(i) for i in queryset], safe=False,
                            json_dumps_params={"ensure_ascii": False, "indent": 1})


@admin.register(GatewayPayment)
class GatewayPaymentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("out_trade_no", "loan", "amount", "status", "trade_no", "created_at", "paid_at")
    list_filter = ("status", "gateway")
    search_fields = ("=out_trade_no", "=trade_no", "loan__contract_no")
