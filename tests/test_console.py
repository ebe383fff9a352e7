"""Console pages: summaries filled for an explicit date, charts, spike alert, no unfiltered COUNT(*)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from console.models import DpdBucketMonth, MandateCancellationDay, RollRateMonth
from console.services import summaries
from console.views import PAGES, spikes
from servicing.models import Loan, Mandate
from tests.factories import book, channel
from tests.test_api_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db
TZ = ZoneInfo("Asia/Shanghai")
BIG = ("servicing_loan", "servicing_instalment", "servicing_mandate", "servicing_debit", "servicing_journalline",
       "servicing_journalentry", "servicing_payment", "servicing_allocation", "servicing_auditlog",
       "servicing_borrower", "console_loanbucketmonth", "servicing_reconciliationexception",
       "servicing_misseddebitexception", "collections_app_promisetopay", "collections_app_complaint")


def _unfiltered_counts(queries) -> list[str]:
    out = []
    for q in queries:
        sql = q["sql"] or ""  # None for the portal's prepared statements (session read)
        if "COUNT(" not in sql.upper():
            continue
        for table in BIG:
            if re.search(rf'FROM "{table}"(?!.*WHERE)', sql, re.S):
                out.append(sql)
    return out


@pytest.fixture
def admin_client(role_users):
    c = Client()
    c.force_login(role_users["admin"])
    return c


def test_dpd_snapshot_buckets_and_roll_rates(reference):
    loans = [book("instalment", "3000.00", 6, date(2026, 1, 5)) for _ in range(4)]
    summaries.refresh_dpd(date(2026, 2, 28))
    assert dict(DpdBucketMonth.objects.filter(month=date(2026, 2, 1)).values_list("bucket", "loans")) == {"M0": 4}
    Loan.objects.filter(pk__in=[loans[0].pk, loans[1].pk]).update(dpd=12, status="overdue")
    Loan.objects.filter(pk=loans[2].pk).update(dpd=45, status="overdue")
    summaries.refresh_dpd(date(2026, 3, 31))
    summaries.refresh_dpd(date(2026, 3, 31))  # the same date twice changes nothing
    assert dict(DpdBucketMonth.objects.filter(month=date(2026, 3, 1)).values_list("bucket", "loans")) == \
        {"M0": 1, "M1": 2, "M2": 1}
    rolls = {(f, t): n for f, t, n in RollRateMonth.objects.filter(month=date(2026, 3, 1)).values_list(
        "from_bucket", "to_bucket", "loans")}
    assert rolls == {("M0", "M0"): 1, ("M0", "M1"): 2, ("M0", "M2"): 1}


def test_mandate_cancellations_per_day_and_spike():
    assert spikes([2, 3, 2, 1, 3, 2, 2, 2, 3, 40]) == {9}
    assert spikes([2, 3, 2, 1, 3, 2, 2, 2, 3, 8]) == set()  # under the floor
    assert spikes([30] * 20) == set()


def test_mandate_cancellation_refresh_and_page(admin_client, loan):
    m = Mandate.objects.get(loan=loan)
    Mandate.objects.filter(pk=m.pk).update(status="cancelled", cancel_cause="bank",
                                           cancelled_at=datetime(2026, 3, 3, 23, 30, tzinfo=TZ))
    summaries.refresh_mandate_cancellations(date(2026, 3, 10))
    row = MandateCancellationDay.objects.get()
    assert (row.day, row.cause, row.cancellations) == (date(2026, 3, 3), "bank", 1)
    r = admin_client.get("/admin/console/mandate-cancellations/?date=2026-03-10")
    assert r.status_code == 200 and b"<svg" in r.content


@pytest.mark.parametrize("page", [p.slug for p in PAGES])
def test_every_page_renders_without_unfiltered_count(admin_client, loan, page):
    summaries.refresh_all(date(2026, 3, 10))
    big = mock.patch("servicing.admin_utils.estimated_row_count", return_value=5_000_000)
    with big, CaptureQueriesContext(connection) as ctx:
        r = admin_client.get(f"/admin/console/{page}/?date=2026-03-10")
    assert r.status_code == 200
    assert not _unfiltered_counts(ctx.captured_queries)
    assert len(ctx.captured_queries) < 40  # constant: no per-row queries


@pytest.mark.parametrize("changelist", ["servicing/loan", "servicing/instalment", "servicing/mandate",
                                        "servicing/journalline", "servicing/auditlog", "servicing/borrower",
                                        "servicing/payment", "console/approvalrequest"])
def test_admin_changelists_do_not_count_big_tables(admin_client, loan, changelist):
    with mock.patch("servicing.admin_utils.estimated_row_count", return_value=5_000_000), \
            CaptureQueriesContext(connection) as ctx:
        r = admin_client.get(f"/admin/{changelist}/")
    assert r.status_code == 200
    assert not _unfiltered_counts(ctx.captured_queries), _unfiltered_counts(ctx.captured_queries)


def test_reconciliation_resolve_action(role_users, loan):
    from servicing.models import ReconciliationException

    e = ReconciliationException.objects.create(loan=loan, reason_code="unknown_reference", reason="无此流水")
    c = Client()
    c.force_login(role_users["supervisor"])
    r = c.post("/admin/console/reconciliation/", {"ids": [e.pk], "note": "已与银行核实"})
    assert r.status_code == 302
    e.refresh_from_db()
    assert e.status == "resolved" and e.resolved_by == role_users["supervisor"]
    from servicing.models import AuditLog

    assert e.resolution_note == "已与银行核实"
    assert AuditLog.objects.filter(object_id=str(e.pk), actor=role_users["supervisor"]).exists()


def test_debit_run_page_reads_summary(admin_client, loan):
    from servicing.models import Debit, DebitBatch

    d = date(2026, 2, 10)
    b = DebitBatch.objects.create(reference="B-TEST", channel=channel(), business_date=d)
    inst = loan.instalments.get(seq=1)
    Debit.objects.create(reference="D1", batch=b, loan=loan, mandate=loan.mandates.get(), instalment=inst,
                         due_date=inst.due_date, amount=inst.principal_due, status="succeeded")
    out = summaries.refresh_debit_runs(d)
    assert out["rows"] == 1
    r = admin_client.get("/admin/console/debit-run/?date=2026-02-10")
    assert r.status_code == 200 and b"B-TEST" in r.content and b"100.0" in r.content


def test_summary_task_takes_an_explicit_date(loan):
    from console.tasks import refresh_console_summaries

    out = refresh_console_summaries("2026-03-10")
    assert out["dpd"]["as_of"] == "2026-03-10"
    _ = timedelta
