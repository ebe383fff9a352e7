"""Console pages mounted inside the admin (/admin/console/…), and the maker-checker queue."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from console import views
from console.exports import SafeExportMixin
from console.models import ApprovalRequest, ApprovalStatus
from servicing.admin_utils import BigTableAdminMixin

_original_get_urls = admin.site.get_urls


def _get_urls():
    return views.urls() + _original_get_urls()


admin.site.get_urls = _get_urls


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(SafeExportMixin, BigTableAdminMixin, admin.ModelAdmin):
    """The checker's queue: the request, what the maker saw, approve / reject (never one's own)."""

    list_display = ("id", "kind", "action", "loan", "status", "requested_by", "requested_at", "decided_by")
    list_filter = ("status", "kind")
    list_select_related = ("loan", "requested_by", "decided_by")
    search_fields = ("loan__contract_no",)
    actions = ["approve_selected", "reject_selected"]
    fields = ("kind", "action", "loan", "payload_pretty", "reason", "maker_view_pretty", "status", "requested_by",
              "requested_at", "decided_by", "decided_at", "decision_note", "result")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False  # requests are filed through the API or the loan pages (console.services.approvals)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("申请内容"))
    def payload_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, ensure_ascii=False, indent=2))

    @admin.display(description=_("经办所见快照"))
    def maker_view_pretty(self, obj):
        return format_html("<pre style='max-height:30em;overflow:auto'>{}</pre>",
                           json.dumps(obj.maker_view, ensure_ascii=False, indent=2))

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not request.user.has_perm("console.approve_approval"):
            actions.pop("approve_selected", None)
            actions.pop("reject_selected", None)
        return actions

    def _decide(self, request, queryset, fn, **kw):
        from console.services.approvals import ApprovalError

        for req in queryset.filter(status=ApprovalStatus.PENDING)[:100]:
            try:
                fn(req, checker=request.user, **kw)
                messages.success(request, f"#{req.pk} OK")
            except ApprovalError as exc:
                messages.error(request, f"#{req.pk}: {exc}")

    @admin.action(description=_("批准并执行所选申请（复核）"))
    def approve_selected(self, request, queryset):
        from console.services.approvals import approve

        self._decide(request, queryset, approve, note="admin")

    @admin.action(description=_("拒绝所选申请（复核）"))
    def reject_selected(self, request, queryset):
        from console.services.approvals import reject

        self._decide(request, queryset, reject, note="rejected in console")
