"""Exports: CSV/XLSX with spreadsheet formulas neutralised, permission-checked and audited."""

from __future__ import annotations

import io

import pytest
from django.test import Client

from console.exports import neutralise, neutralise_dataset
from tests.test_api_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

DANGEROUS = ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\t=x", "\r=x"]


@pytest.mark.parametrize("value", DANGEROUS)
def test_dangerous_cells_are_prefixed_with_a_quote(value):
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize("value", ["张三", "6222 **** **** 1234", "", "a=b", 12, None])
def test_harmless_cells_unchanged(value):
    assert neutralise(value) == value


def test_dataset_headers_and_rows():
    import tablib

    data = neutralise_dataset(tablib.Dataset(["=x", "ok"], headers=["@h", "b"]))
    assert data.headers == ["'@h", "b"] and list(data[0]) == ["'=x", "ok"]


def _complaint(loan, subject):
    from datetime import date

    from collections_app.models import Complaint

    return Complaint.objects.create(reference="TS-1", loan=loan, borrower=loan.borrower, subject=subject,
                                    description="d", filed_on=date(2026, 3, 1), due_on=date(2026, 3, 16))


def test_console_csv_and_xlsx_exports_neutralise(role_users, loan):
    import openpyxl

    _complaint(loan, "=HYPERLINK(\"http://evil\")")
    c = Client()
    c.force_login(role_users["supervisor"])
    csv = c.get("/admin/console/complaints/?date=2026-03-10&export=csv")
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    text = csv.content.decode("utf-8-sig")
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text
    xlsx = c.get("/admin/console/complaints/?date=2026-03-10&export=xlsx")
    wb = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    cells = [cell.value for row in wb.active.iter_rows() for cell in row]
    assert "'=HYPERLINK(\"http://evil\")" in cells
    assert not any(isinstance(v, str) and v.startswith("=") for v in cells)
    from servicing.models import AuditLog

    assert AuditLog.objects.filter(action="export").count() == 2


def test_admin_export_uses_safe_mixin(role_users, loan):
    from console.services.approvals import file_request

    file_request(loan=loan, action="write_off", payload={"value_date": "2026-06-01"}, reason="=cmd()",
                 maker=role_users["operations"])
    c = Client()
    c.force_login(role_users["auditor"])
    fields = ["id", "kind", "action", "loan", "reason", "status", "requested_by", "requested_at"]
    r = c.post("/admin/console/approvalrequest/export/",
               {"format": "0", "resource": "0", **{f"approvalrequestresource_{f}": "on" for f in fields}})
    assert r.status_code == 200 and "attachment" in r["Content-Disposition"]
    # the reason a maker typed starts with "=": escaped so a spreadsheet shows it as text, never runs it
    assert b"'=cmd()" in r.content and b",=cmd()" not in r.content


def test_export_refused_without_permission(role_users, loan):
    c = Client()
    c.force_login(role_users["collector"])
    assert c.get("/admin/console/promises/?export=csv").status_code == 403
