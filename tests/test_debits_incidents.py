"""Incidents: detected from a batch, penalty and DPD frozen, one apology each, re-presentment, bulk waiver."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from servicing.models import Debit, DebitSkip, Incident, Instalment, JournalEntry, Loan
from servicing.services.business_day import run_business_day
from servicing.services.debits.batches import create_debit_batch, export_debit_batch
from servicing.services.debits.incidents import (
    IncidentError,
    add_affected,
    approve_waiver,
    close_incident,
    incident_report,
    open_incident,
    request_waiver,
)
from servicing.services.debits.results import import_debit_results
from servicing.services.verify import verify_books

from .test_debits_support import (  # noqa: F401
    FIRST_DUE,
    debits_of,
    make_loan,
    notices_fixture,
    ref_data_fixture,
    result_file,
)

pytestmark = pytest.mark.django_db


def test_incident_freezes_penalty_apologises_once_and_represents(ref_data, notices, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    channel = ref_data["std"]
    for i in range(1, 57):
        make_loan(i, channel)
    batch = create_debit_batch(FIRST_DUE, channel).batch
    export_debit_batch(batch, tmp_path / "o.csv")
    debits = debits_of(batch)
    rows = []
    for n, d in enumerate(debits):
        if n < 52:
            rows.append((d.reference, d.amount, "failed", "02", "系统未开放或暂时关闭", None))
        elif n < 55:
            rows.append((d.reference, d.amount, "succeeded", "00", "成功", FIRST_DUE))
        else:
            rows.append((d.reference, d.amount, "failed", "64", "余额不足", None))
    summary = import_debit_results(result_file(channel, rows), channel=channel)
    assert len(summary["incidents"]) == 1
    incident = Incident.objects.get()
    assert incident.automatic and incident.batch_id == batch.pk and incident.window_start == FIRST_DUE
    affected = {d.loan_id for d in debits[:52]}
    assert set(incident.affected.values_list("loan_id", flat=True)) == affected
    control = debits[55].loan
    for loan_id in list(affected)[:5]:
        assert [e for e, lid, _, _ in notices.calls if lid == loan_id and e == "incident_apology"] == \
            ["incident_apology"]
    assert not notices.events(control, "incident_apology")
    # re-importing nothing new opens no second incident; the channel stays down for 9 days
    day = FIRST_DUE
    for _ in range(9):
        day += timedelta(days=1)
        create_debit_batch(day, channel)
        run_business_day(day)
    assert len(notices.events(event="incident_apology")) == 52  # one each, never repeated
    held = debits[0].loan
    assert not Debit.objects.filter(loan=held).exclude(pk=debits[0].pk).exists()
    assert DebitSkip.objects.filter(loan=held, reason="incident_hold").exists()
    inst = Instalment.objects.get(loan=held, seq=1)
    assert inst.penalty_accrued == Decimal("0.00")  # no penalty for the days the bank was down
    assert Loan.objects.get(pk=held.pk).dpd == 0  # DPD does not count in the window
    ctl_inst = Instalment.objects.get(loan=control, seq=1)
    assert ctl_inst.penalty_accrued > 0 and Loan.objects.get(pk=control.pk).dpd == 9  # the control loan pays

    back = day + timedelta(days=1)
    close_incident(incident, back_on=back)
    represent = create_debit_batch(back, channel)
    again = {d.loan_id: d for d in debits_of(represent.batch)}
    assert affected <= set(again)
    assert {again[x].kind for x in affected} == {"represent"}
    report = incident_report(incident)
    assert report["affected_loans"] == 52
    assert report["by_bank_and_category"][0]["category"] == "channel_down"
    assert report["by_bank_and_category"][0]["count"] == 52
    assert all(r.ok for r in verify_books())


def test_manual_incident_bulk_waiver_needs_a_second_person(ref_data, notices, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    channel = ref_data["std"]
    loan = make_loan(1, channel)
    batch = create_debit_batch(FIRST_DUE, channel).batch
    export_debit_batch(batch, tmp_path / "o.csv")
    d = debits_of(batch)[0]
    import_debit_results(result_file(channel, [(d.reference, d.amount, "failed", "98", "系统维护", None)]),
                         channel=channel)
    day = FIRST_DUE
    for _ in range(7):
        day += timedelta(days=1)
        run_business_day(day)
    before = Instalment.objects.get(loan=loan, seq=1)
    penalty, compound = before.penalty_accrued, before.compound_accrued
    charged = penalty + compound
    assert penalty > 0  # the incident was only recognised a week later: penalty was charged meanwhile
    User = get_user_model()
    ops, boss = User.objects.create(username="ops"), User.objects.create(username="boss")
    incident = open_incident(channel=channel, window_start=FIRST_DUE, title="bank outage found late", user=ops)
    assert set(incident.affected.values_list("loan_id", flat=True)) == {loan.pk}
    request_waiver(incident, user=ops)
    with pytest.raises(IncidentError):
        approve_waiver(incident, user=ops, on_date=day)
    total = approve_waiver(incident, user=boss, on_date=day)
    assert total == charged
    inst = Instalment.objects.get(loan=loan, seq=1)
    assert inst.penalty_waived == penalty and inst.outstanding("penalty") == 0
    assert inst.compound_waived == compound and inst.outstanding("compound") == 0
    entry = JournalEntry.objects.get(kind="waiver", loan=loan)
    expected = {("waiver_expense", charged), ("penalty_receivable", -penalty)}
    if compound:
        expected.add(("compound_receivable", -compound))
    assert {(line.account, line.amount) for line in entry.lines.all()} == expected
    assert approve_waiver(incident, user=boss, on_date=day) == charged  # once
    assert all(r.ok for r in verify_books()), [(r.name, r.examples) for r in verify_books() if not r.ok]


def _outage_found_late(channel, tmp_path, n: int, days: int = 6):
    """n loans whose first debit failed on a bank outage (too few for automatic detection), then `days` business
    days of penalty before ops recognise it and open the incident by hand."""
    loans = [make_loan(i, channel) for i in range(1, n + 1)]
    batch = create_debit_batch(FIRST_DUE, channel).batch
    export_debit_batch(batch, tmp_path / f"o{n}.csv")
    rows = [(d.reference, d.amount, "failed", "98", "系统维护", None) for d in debits_of(batch)]
    summary = import_debit_results(result_file(channel, rows), channel=channel, name=f"r{n}.csv")
    assert summary["incidents"] == []
    day = FIRST_DUE
    for _ in range(days):
        day += timedelta(days=1)
        run_business_day(day)
    return loans, day


@pytest.mark.parametrize("inline", [True, False])
def test_every_affected_borrower_gets_one_apology_and_the_waiver_is_set_based(ref_data, tmp_path, settings, inline,
                                                                             monkeypatch):
    from notices.models import Notice
    from servicing.models import AuditLog, IncidentLoan
    from servicing.services.debits import incidents

    from .test_notices_support import notices_settings

    settings.NOTICES = notices_settings(SYNC_TASKS=False)
    settings.MEDIA_ROOT = tmp_path / "media"
    # inline: notify() one by one; else one COPY into the outbox (more than the threshold)
    settings.REPAYDESK = {**settings.REPAYDESK, "INLINE_RECEIPTS_MAX": 200 if inline else 0}
    monkeypatch.setattr(incidents, "APOLOGY_BLOCK", 2)  # the apologies of 5 loans in 3 blocks
    channel = ref_data["std"]
    loans, day = _outage_found_late(channel, tmp_path, 5)
    charged = {i.loan_id: (i.penalty_accrued, i.compound_accrued)
               for i in Instalment.objects.filter(loan__in=loans, seq=1)}
    assert all(pen > 0 for pen, _ in charged.values())
    assert {lo.dpd for lo in Loan.objects.filter(pk__in=[x.pk for x in loans])} == {6}
    User = get_user_model()
    ops, boss = User.objects.create(username="ops"), User.objects.create(username="boss")
    english = loans[0].borrower
    english.language = "en"
    english.save(update_fields=["language"])
    incident = open_incident(channel=channel, window_start=FIRST_DUE, title="outage found late", user=ops)

    failed = {d.loan_id: d.pk for d in Debit.objects.filter(loan__in=loans, status="failed")}
    assert dict(incident.affected.values_list("loan_id", "debit_id")) == failed
    apologies = Notice.objects.filter(event="incident_apology")
    # each borrower told, on each channel of the event, once (not only the first: the key is per incident and loan)
    assert sorted(apologies.filter(channel="sms").values_list("loan_id", flat=True)) == sorted(x.pk for x in loans)
    for notice in apologies.filter(channel="sms"):
        assert f"/pay/{notice.loan.contract_no}/" in notice.context["pay_url"]
        # in the borrower's language, like the template around it
        assert notice.context["incident_summary"].startswith("since" if notice.loan_id == loans[0].pk else
                                                             f"{FIRST_DUE.isoformat()} 起")
    count = apologies.count()
    add_affected(incident, loans=loans)  # attaching the same loans again tells nobody twice
    assert apologies.count() == count

    request_waiver(incident, user=ops)
    total = approve_waiver(incident, user=boss, on_date=day)
    assert total == sum((pen + cmp for pen, cmp in charged.values()), Decimal("0"))
    for inst in Instalment.objects.filter(loan__in=loans, seq=1):
        pen, cmp = charged[inst.loan_id]
        assert (inst.penalty_waived, inst.compound_waived) == (pen, cmp)
        assert inst.outstanding("penalty") == inst.outstanding("compound") == 0 and inst.status == "overdue"
        entry = JournalEntry.objects.get(kind="waiver", loan_id=inst.loan_id)
        assert entry.idempotency_key == f"waiver:incident:{incident.pk}:{inst.loan_id}" and entry.created_by == boss
        assert sum(line.amount for line in entry.lines.all() if line.account == "waiver_expense") == pen + cmp
        assert IncidentLoan.objects.get(incident=incident, loan_id=inst.loan_id).waived_amount == pen + cmp
    # still owing principal and interest, but not a day past due counted inside the (open) incident window
    assert {(lo.status, lo.dpd) for lo in Loan.objects.filter(pk__in=[x.pk for x in loans])} == {("overdue", 0)}
    assert AuditLog.objects.get(action="incident.waiver_approved").data["loans"] == "5"
    assert approve_waiver(incident, user=boss, on_date=day) == total  # once
    assert JournalEntry.objects.filter(kind="waiver").count() == 5
    assert all(r.ok for r in verify_books()), [(r.name, r.examples) for r in verify_books() if not r.ok]



def test_the_waiver_takes_as_many_queries_for_one_loan_as_for_five(ref_data, notices, tmp_path):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    channel = ref_data["std"]
    loans, day = _outage_found_late(channel, tmp_path, 6)
    User = get_user_model()
    ops, boss = User.objects.create(username="ops"), User.objects.create(username="boss")
    counts, totals = [], []
    for title, affected in (("one", loans[:1]), ("five", loans[1:])):
        incident = open_incident(channel=channel, window_start=FIRST_DUE, title=title, user=ops, loans=affected)
        request_waiver(incident, user=ops)
        with CaptureQueriesContext(connection) as q:
            totals.append(approve_waiver(incident, user=boss, on_date=day))
        counts.append(len(q))
    assert totals[0] > 0 and totals[1] == 5 * totals[0]  # the same loans, the same penalty each
    assert counts[0] == counts[1]
    assert JournalEntry.objects.filter(kind="waiver").count() == 6
