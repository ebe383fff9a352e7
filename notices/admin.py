"""Notices in the ops console: the outbox (read-only, retry failed), templates (validated, previewed),
preferences, the inbox, certificates (download, re-issue) and the settlement-notice KPI.

`NoticeInline` is meant for LoanAdmin (the lead attaches it): what the borrower was told about a loan.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from servicing.admin_utils import BigTableAdminMixin, ReadOnlyAdminMixin, ReadOnlyInlineMixin

from .catalog import EVENTS, event_spec
from .models import (
    CertificateStatus,
    ChannelPreference,
    InboxMessage,
    Notice,
    NoticeStatus,
    NoticeTemplate,
    SettlementCertificate,
    SettlementKpiDay,
)
from .services import certificates as certificate_services
from .services import dispatch
from .services.templates import preview
from .services.templating import TemplateError, validate

EVENT_CHOICES = [(code, code) for code in EVENTS]


class NoticeInline(ReadOnlyInlineMixin, admin.TabularInline):
    """What the borrower was told about this loan (attach to LoanAdmin.inlines)."""

    model = Notice
    fk_name = "loan"
    ordering = ("-created_at", "-id")
    fields = ("event", "channel", "status", "scheduled_for", "sent_at", "attempts", "last_error")
    verbose_name_plural = _("通知记录")
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).defer("context", "body")


@admin.register(Notice)
class NoticeAdmin(BigTableAdminMixin, admin.ModelAdmin):
    list_display = ("id", "event", "channel", "status", "contract", "scheduled_for", "sent_at", "attempts",
                    "last_error")
    list_filter = ("status", "channel", "event", "collection")
    search_fields = ("=loan__contract_no", "=dedupe_key")
    search_help_text = _("输入完整合同号")
    list_select_related = ("loan",)
    date_hierarchy = "scheduled_for"
    actions = ("retry_failed",)
    readonly_fields = [f.name for f in Notice._meta.fields]

    @admin.display(description=_("合同号"), ordering="loan__contract_no")
    def contract(self, obj):
        return obj.loan.contract_no if obj.loan_id else "-"

    @admin.action(description=_("重新发送所选失败通知"), permissions=["view"])
    def retry_failed(self, request, queryset):
        ids = list(queryset.filter(status=NoticeStatus.FAILED).values_list("pk", flat=True))
        n = dispatch.requeue(ids)
        self.message_user(request, _("已重新排队 %(n)d 条通知") % {"n": n}, messages.SUCCESS)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class NoticeTemplateForm(forms.ModelForm):
    event = forms.ChoiceField(label=_("事件"), choices=EVENT_CHOICES)

    class Meta:
        model = NoticeTemplate
        fields = ("event", "channel", "language", "subject", "body")
        widgets = {"body": forms.Textarea(attrs={"rows": 8, "cols": 100})}

    def clean(self):
        data = super().clean()
        event = data.get("event")
        if event:
            try:
                validate(event, data.get("subject", ""), data.get("body", ""))
            except TemplateError as exc:
                raise forms.ValidationError(_("模板无法保存：%(error)s") % {"error": exc}) from exc
        return data


@admin.register(NoticeTemplate)
class NoticeTemplateAdmin(admin.ModelAdmin):
    form = NoticeTemplateForm
    list_display = ("event", "channel", "language", "subject", "updated_at", "updated_by")
    list_filter = ("event", "channel", "language")
    search_fields = ("subject", "body")
    readonly_fields = ("variables", "preview_rendered", "updated_at", "updated_by")
    fields = ("event", "channel", "language", "subject", "body", "variables", "preview_rendered", "updated_at",
              "updated_by")

    @admin.display(description=_("可用变量"))
    def variables(self, obj):
        if not obj or not obj.event:
            return _("保存后显示")
        spec = event_spec(obj.event)
        return format_html_join(" ", "<code>{{{{ {} }}}}</code>", ((v,) for v in spec.all_variables))

    @admin.display(description=_("预览（示例数据）"))
    def preview_rendered(self, obj):
        if not obj or not obj.pk:
            return _("保存后显示")
        try:
            subject, body = preview(obj.event, obj.subject, obj.body)
        except (TemplateError, ValueError) as exc:
            return format_html('<span style="color:#b00">{}</span>', exc)
        return format_html('<div style="white-space:pre-wrap;max-width:48em;border:1px solid #ccc;padding:8px">'
                           "<b>{}</b>\n{}</div>", subject, body)

    def save_model(self, request, obj, form, change):
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(ChannelPreference)
class ChannelPreferenceAdmin(admin.ModelAdmin):
    list_display = ("borrower", "channel", "opted_out", "updated_at")
    list_filter = ("channel", "opted_out")
    raw_id_fields = ("borrower",)
    search_fields = ("=borrower__phone",)

    def save_model(self, request, obj, form, change):
        from .services.preferences import set_channel_opt_out

        try:
            set_channel_opt_out(borrower=obj.borrower, channel=obj.channel, opted_out=obj.opted_out,
                                user=request.user)
        except ValueError as exc:
            self.message_user(request, str(exc), messages.ERROR)


@admin.register(InboxMessage)
class InboxMessageAdmin(ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = ("id", "borrower", "subject", "created_at", "read_at")
    list_filter = ("read_at",)
    raw_id_fields = ("borrower", "notice")
    search_fields = ("=borrower__phone",)


@admin.register(SettlementCertificate)
class SettlementCertificateAdmin(admin.ModelAdmin):
    list_display = ("number", "contract", "version", "status", "issued_on", "verification_code", "download")
    list_filter = ("status", "issued_on")
    search_fields = ("=number", "=verification_code", "=loan__contract_no")
    list_select_related = ("loan",)
    readonly_fields = ("loan", "version", "number", "verification_code", "status", "issued_on", "sha256",
                       "reason", "created_at", "rendered_at", "download", "verify_link", "contents")
    fields = readonly_fields
    actions = ("reissue",)

    @admin.display(description=_("合同号"), ordering="loan__contract_no")
    def contract(self, obj):
        return obj.loan.contract_no

    @admin.display(description=_("PDF"))
    def download(self, obj):
        if obj.status == CertificateStatus.PENDING or not obj.pdf:
            return _("生成中")
        url = reverse("notices:certificate-download", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("下载"))

    @admin.display(description=_("查验页面"))
    def verify_link(self, obj):
        url = reverse("notices:verify", args=[obj.verification_code])
        return format_html('<a href="{}" target="_blank">{}</a>', url, url)

    @admin.display(description=_("证明内容"))
    def contents(self, obj):
        return format_html_join("", "<div><b>{}</b>: {}</div>", sorted(obj.data.items()))

    @admin.action(description=_("更正后重新出具（新版本）"), permissions=["change"])
    def reissue(self, request, queryset):
        for cert in queryset.select_related("loan__borrower", "loan__product").exclude(
                status=CertificateStatus.SUPERSEDED):
            new = certificate_services.issue_certificate(cert.loan, reason=f"re-issued by {request.user}",
                                                         user=request.user)
            self.message_user(request, _("已重新出具 %(n)s") % {"n": new.number}, messages.SUCCESS)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SettlementKpiDay)
class SettlementKpiDayAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Share of settlement notices sent within one business day of the last payment, by day."""

    list_display = ("day", "settlements", "sent", "within_one_business_day", "share", "avg_hours", "max_hours")
    date_hierarchy = "day"

    @admin.display(description=_("一个工作日内占比"))
    def share(self, obj):
        if obj.share_within is None:
            return "-"
        colour = "#1b8a3a" if obj.share_within >= 100 else "#b00"
        return format_html('<b style="color:{}">{}%</b>', colour, obj.share_within)
