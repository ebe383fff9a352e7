"""A failed debit on a defaulted loan shows on its collection case and raises the case's priority."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from collections_app.models import CaseEvent
from servicing.services.business_day import run_business_day
from servicing.services.debits.batches import create_debit_batch, export_debit_batch
from servicing.services.debits.results import import_debit_results
from tests.test_collections_support import open_case
from tests.test_debits_support import code_for, debits_of, make_loan, ref_data_fixture, result_file  # noqa: F401

pytestmark = pytest.mark.django_db
START = date(2026, 3, 1)  # first due 2026-04-01


def test_failed_debit_goes_on_the_case_timeline_and_priority(ref_data, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    channel = ref_data["std"]
    loan = make_loan(1, channel, start=START)
    due = loan.instalments.order_by("seq").first().due_date
    batch = create_debit_batch(due, channel).batch
    export_debit_batch(batch, tmp_path / "out.csv")
    (debit,) = debits_of(batch)
    content = result_file(channel, [(debit.reference, debit.amount, "failed", code_for(channel, "insufficient_funds"),
                                     "余额不足", None)])
    summary = import_debit_results(content, channel=channel, name="r.csv")
    assert summary["failed"]["insufficient_funds"] == 1

    day = due
    while open_case(loan) is None and day < due + timedelta(days=10):
        day += timedelta(days=1)
        run_business_day(day)
    case = open_case(loan)
    assert case is not None, "the loan defaulted past grace: a case must be open"
    events = CaseEvent.objects.filter(case=case, kind="debit_failed")
    assert events.count() == 1 and "insufficient_funds" in events.get().detail
    case.refresh_from_db()
    assert case.priority_reasons.get("debit_failures") == 5

    run_business_day(day)  # re-running the day adds nothing
    assert CaseEvent.objects.filter(case=case, kind="debit_failed").count() == 1
