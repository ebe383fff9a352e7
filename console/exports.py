"""Exports (CSV/XLSX) that cannot carry a spreadsheet formula: a cell whose text starts with =, +, -, @
(or tab / carriage return) is prefixed with a single quote, so Excel/WPS shows it as text.

Use in any admin:  ``class MyAdmin(SafeExportMixin, admin.ModelAdmin)`` (django-import-export's export
with the neutralising step, the ``console.export_data`` permission, and an audit line per export); in a
Resource: ``class MyResource(SafeResourceMixin, resources.ModelResource)``; for a console page's table:
``export_response(headers, rows, "xlsx", "name")``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import tablib
from django.http import HttpResponse
from django.utils import timezone
from import_export.admin import ExportMixin

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
EXPORT_PERMISSION = "console.export_data"
FORMATS = {"csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def neutralise(value):
    """The cell as text a spreadsheet will not evaluate. Numbers and dates stay typed values."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise_dataset(data: tablib.Dataset) -> tablib.Dataset:
    safe = tablib.Dataset(headers=[neutralise(h) for h in (data.headers or [])], title=data.title)
    for row in data:
        safe.append([neutralise(v) for v in row])
    return safe


class SafeResourceMixin:
    """For an import-export Resource: every exported dataset is neutralised."""

    def export(self, *args, **kwargs):
        return neutralise_dataset(super().export(*args, **kwargs))


class SafeExportMixin(ExportMixin):
    """For a ModelAdmin: export neutralised, allowed to roles with console.export_data, audited."""

    def has_export_permission(self, request):
        return request.user.has_perm(EXPORT_PERMISSION)

    def get_data_for_export(self, request, queryset, **kwargs):
        data = neutralise_dataset(super().get_data_for_export(request, queryset, **kwargs))
        from servicing.services import audit

        audit.record("export", self.model._meta.label, actor=request.user, rows=len(data))
        return data


def _cell(value):
    if isinstance(value, Decimal | int | float | date | datetime):
        return value
    return neutralise("" if value is None else str(value))


def export_response(headers: list[str], rows, fmt: str, name: str, *, user=None) -> HttpResponse:
    """A console table as a CSV or XLSX download."""
    if fmt not in FORMATS:
        fmt = "csv"
    data = tablib.Dataset(headers=[neutralise(str(h)) for h in headers], title=name[:31])
    for row in rows:
        data.append([_cell(v) for v in row])
    if fmt == "csv":
        body = "\ufeff" + data.export("csv")  # BOM: Excel opens UTF-8 Chinese correctly
    else:
        body = data.export("xlsx")
    if user is not None:
        from servicing.services import audit

        audit.record("export", name, actor=user, page=name, rows=len(data), format=fmt)
    resp = HttpResponse(body, content_type=FORMATS[fmt])
    resp["Content-Disposition"] = f'attachment; filename="{name}-{timezone.localdate():%Y%m%d}.{fmt}"'
    return resp
