"""Hardship plans re-age with balanced books, waivers are maker-checker, complaints pause and close,
collectors see only their own cases in the admin and the API."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from collections_app.models import (
    CaseEvent,
    CaseStatus,
    Complaint,
    ContactAttempt,
    HardshipArrangement,
    WaiverRequest,
)
from collections_app.services.cases import NotAllowed
from collections_app.services.complaints import answer_complaint, file_complaint
from collections_app.services.work import decide_hardship, decide_waiver, request_hardship, request_waiver
from servicing.models import JournalEntry
from servicing.services.business_day import run_business_day
from servicing.services.verify import verify_books

from .test_collections_support import book, make_world, open_case, pay, run_days

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db, django_user_model):
    return make_world(django_user_model)


def books_ok():
    bad = [r for r in verify_books() if not r.ok]
    assert not bad, bad


@pytest.fixture
def two_cases(world):
    """Two defaulted loans, one case for each collector."""
    loans = [book(world["product"], 1), book(world["product"], 2)]
    run_days(date(2026, 5, 15), date(2026, 5, 21))
    cases = [open_case(loan) for loan in loans]
    for c, who in zip(cases, ("collector", "collector2"), strict=True):
        c.assigned_to = world[who]
        c.save(update_fields=["assigned_to"])
    return cases


@pytest.fixture
def case(world):
    loan = book(world["product"])
    run_days(date(2026, 5, 15), date(2026, 5, 21))
    c = open_case(loan)
    c.assigned_to = world["collector"]
    c.save(update_fields=["assigned_to"])
    return c


def test_repayment_plan_reages_with_balanced_entries_and_pauses_the_case(case, world):
    loan = case.loan
    arrears_before = case.overdue_total
    arr = request_hardship(case=case, kind="plan", n_instalments=3, reason="失业，收入中断", actor=world["collector"],
                           on_date=date(2026, 5, 21))
    case.refresh_from_db()
    assert case.status == CaseStatus.PAUSED and case.pause_reason == "hardship"
    with pytest.raises(NotAllowed):  # collectors cannot approve
        decide_hardship(arrangement=arr, approve=True, actor=world["collector"], on_date=date(2026, 5, 21))
    arr = decide_hardship(arrangement=arr, approve=True, actor=world["supervisor"], on_date=date(2026, 5, 21))
    assert arr.status == HardshipArrangement.Status.ACTIVE and len(arr.instalment_ids) == 3
    entry = JournalEntry.objects.get(kind="reschedule", loan=loan)
    assert sum(line.amount for line in entry.lines.all()) == 0 and entry.lines.count() >= 2
    assert sum(Decimal(v) for v in arr.arrears.values()) == arrears_before
    loan.refresh_from_db()
    assert loan.status == "active" and loan.dpd == 0
    books_ok()

    # while the plan is kept the case stays paused: no closing, no stage moves, no reminders
    messages_before = ContactAttempt.objects.filter(case=case, automatic=True).count()
    run_days(date(2026, 5, 22), date(2026, 6, 14))
    case.refresh_from_db()
    assert case.status == CaseStatus.PAUSED and case.stage == 1
    assert ContactAttempt.objects.filter(case=case, automatic=True).count() == messages_before
    first = loan.instalments.filter(status="pending").order_by("due_date").first()
    assert first.pk in arr.instalment_ids
    run_business_day(date(2026, 6, 15))
    first.refresh_from_db()
    pay(loan, first.total_outstanding, date(2026, 6, 15), "P-plan-1")
    run_business_day(date(2026, 6, 16))
    case.refresh_from_db()
    arr.refresh_from_db()
    assert case.status == CaseStatus.PAUSED and arr.status == HardshipArrangement.Status.ACTIVE
    books_ok()


def test_plan_broken_on_redefault_resumes_the_case(case, world):
    arr = request_hardship(case=case, kind="plan", n_instalments=2, reason="疾病", actor=world["collector"],
                           on_date=date(2026, 5, 21))
    decide_hardship(arrangement=arr, approve=True, actor=world["supervisor"], on_date=date(2026, 5, 21))
    run_days(date(2026, 5, 22), date(2026, 6, 25))  # June 15 unpaid: past grace the plan is broken
    arr.refresh_from_db()
    case.refresh_from_db()
    assert arr.status == HardshipArrangement.Status.BROKEN
    assert case.status == CaseStatus.OPEN and case.stage >= 2
    books_ok()


def test_deferral_moves_the_overdue_due_date(case, world):
    arr = request_hardship(case=case, kind="deferral", defer_to=date(2026, 6, 10), reason="工资延发",
                           actor=world["collector"], on_date=date(2026, 5, 21))
    decide_hardship(arrangement=arr, approve=True, actor=world["supervisor"], on_date=date(2026, 5, 21))
    loan = case.loan
    loan.refresh_from_db()
    assert loan.status == "active" and loan.instalments.get(seq=1).due_date == date(2026, 6, 10)
    books_ok()


def test_waiver_maker_checker_and_limits(case, world):
    inst = case.loan.instalments.get(seq=1)
    assert inst.penalty_accrued > 0
    amount = inst.penalty_accrued
    sup, sup2 = world["supervisor"], world["supervisor2"]
    own = request_waiver(case=case, instalment=inst, component="penalty", amount=amount, reason="首次逾期",
                         actor=sup, on_date=date(2026, 5, 21))
    with pytest.raises(NotAllowed):
        decide_waiver(request=own, approve=True, actor=sup, on_date=date(2026, 5, 21))
    own.refresh_from_db()
    assert own.status == WaiverRequest.Status.PENDING and own.entry is None

    req = request_waiver(case=case, instalment=inst, component="penalty", amount=amount, reason="首次逾期",
                         actor=world["collector"], on_date=date(2026, 5, 21))
    with pytest.raises(NotAllowed):  # a collector's approval limit is 0
        decide_waiver(request=req, approve=True, actor=world["collector2"], on_date=date(2026, 5, 21))
    decide_waiver(request=req, approve=True, actor=sup2, on_date=date(2026, 5, 21))
    req.refresh_from_db()
    inst.refresh_from_db()
    assert req.status == WaiverRequest.Status.APPROVED and req.entry.kind == "waiver"
    assert inst.penalty_waived == amount
    books_ok()


def test_open_complaint_stops_escalation_answer_within_clock_closes_it(case, world):
    loan = case.loan
    complaint = file_complaint(loan=loan, subject="催收员态度恶劣", description="来电语气威胁", on_date=date(2026, 5, 21),
                               filed_by=world["supervisor"])
    assert complaint.due_on == date(2026, 6, 5) and complaint.involved_collector == world["collector"]
    with pytest.raises(NotAllowed):  # the collector involved cannot handle it
        answer_complaint(complaint=complaint, answer="…", root_cause="contact_conduct", actor=world["collector"],
                         on_date=date(2026, 5, 22))
    run_days(date(2026, 5, 22), date(2026, 6, 2))  # DPD crosses 7 and 16 (stages 2, 3) while paused
    case.refresh_from_db()
    assert case.status == CaseStatus.PAUSED and case.stage == 1
    answer_complaint(complaint=complaint, answer="已核实，已对催收员进行培训并更换", root_cause="contact_conduct",
                     actor=world["supervisor2"], on_date=date(2026, 6, 2))
    complaint.refresh_from_db()
    assert complaint.status == Complaint.Status.ANSWERED and not complaint.answered_late
    run_business_day(date(2026, 6, 3))
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN and case.stage == 3
    assert CaseEvent.objects.filter(case=case, kind="resumed").exists()


def test_overdue_complaint_shows_red_in_the_admin(case, world, client):
    late = file_complaint(loan=case.loan, subject="扣款错误", description="重复扣款", on_date=date(2026, 5, 1),
                          filed_by=world["supervisor"])
    on_time = file_complaint(loan=case.loan, subject="咨询", description="还款方式", on_date=date(2026, 5, 20),
                             filed_by=world["supervisor"])
    client.force_login(world["supervisor"])
    html = client.get(reverse("admin:collections_app_complaint_changelist")).content.decode()
    assert html.count("complaint-overdue") == 1
    assert late.reference in html and on_time.reference in html


def test_cases_go_to_the_collectors_of_their_bucket_and_wait_when_none_is_free(world):
    from collections_app.models import CollectorProfile
    from collections_app.services.business_day import assign_unassigned

    loans = [book(world["product"], i) for i in range(1, 5)]
    run_days(date(2026, 5, 15), date(2026, 5, 21))
    cases = [open_case(loan) for loan in loans]
    CollectorProfile.objects.create(user=world["collector"], buckets="M1")
    CollectorProfile.objects.create(user=world["collector2"], buckets="M2", max_open_cases=1)
    # M1, M1 (the higher priority), M2, M3: no collector takes M3
    for c, bucket, priority in zip(cases, ("M1", "M1", "M2", "M3"), (10, 90, 50, 99), strict=True):
        c.bucket, c.priority, c.assigned_to = bucket, priority, None
        c.save(update_fields=["bucket", "priority", "assigned_to"])
    d = date(2026, 5, 22)
    assert assign_unassigned(d, "bucket") == 3
    for c in cases:
        c.refresh_from_db()
    assert [c.assigned_to for c in cases] == [world["collector"], world["collector"], world["collector2"], None]
    # the M2 collector is now at her cap: a second M2 case waits, unranked, like the M3 one
    cases[0].bucket, cases[0].assigned_to = "M2", None
    cases[0].save(update_fields=["bucket", "assigned_to"])
    assert assign_unassigned(d, "bucket") == 0
    cases[0].refresh_from_db()
    assert cases[0].assigned_to is None
    assert CaseEvent.objects.filter(case=cases[2], kind="assigned", dedupe_key__endswith=d.isoformat()).count() == 1


def test_collector_sees_only_own_cases_in_admin(two_cases, world, client):
    case, theirs = two_cases

    client.force_login(world["collector"])
    listing = client.get(reverse("admin:collections_app_collectioncase_changelist"))
    assert listing.status_code == 200
    ids = [c.pk for c in listing.context["cl"].result_list]
    assert ids == [case.pk]
    assert client.get(reverse("admin:collections_app_collectioncase_change", args=[case.pk])).status_code == 200
    page = client.get(reverse("admin:collections_app_collectioncase_change", args=[theirs.pk]))
    assert page.status_code in (403, 404)
    own_page = client.get(reverse("admin:collections_app_collectioncase_change", args=[case.pk])).content.decode()
    assert case.borrower.phone not in own_page and case.borrower.id_number not in own_page
    assert case.borrower.masked_phone in own_page

    client.force_login(world["supervisor"])
    listing = client.get(reverse("admin:collections_app_collectioncase_changelist"))
    assert {c.pk for c in listing.context["cl"].result_list} == {case.pk, theirs.pk}
    assert client.get(reverse("admin:collections_app_collectioncase_change", args=[theirs.pk])).status_code == 200


def test_collector_sees_only_own_cases_in_api(two_cases, world, client):
    case, theirs = two_cases
    client.force_login(world["collector"])
    base = "/api/v1/collections/cases/"
    listing = client.get(base).json()
    rows = listing["results"] if isinstance(listing, dict) else listing
    assert [r["id"] for r in rows] == [case.pk]
    assert rows[0]["reasons"] and rows[0]["phone"] == case.borrower.masked_phone
    assert client.get(f"{base}{case.pk}/").status_code == 200
    assert client.get(f"{base}{theirs.pk}/").status_code == 404
    r = client.post(f"{base}{theirs.pk}/contacts/", {"channel": "call", "outcome": "connected",
                                                     "identity_stated": True}, content_type="application/json")
    assert r.status_code == 404
    assert not ContactAttempt.objects.filter(case=theirs, automatic=False).exists()

    client.force_login(world["supervisor"])
    assert client.get(f"{base}{theirs.pk}/").status_code == 200


def test_demo_seed(world):
    import random

    from collections_app.demo import seed
    from collections_app.models import Complaint as C
    from collections_app.models import HardshipArrangement as H
    from collections_app.models import PromiseToPay as P
    from collections_app.models import WaiverRequest as W
    from servicing.demo import DemoContext

    ctx = DemoContext(as_of=date(2026, 6, 30), rng=random.Random(1))
    seed(ctx)
    assert ctx.lines
    assert set(P.objects.values_list("status", flat=True)) == {"kept", "broken"}
    assert W.objects.filter(status="pending").exists() and H.objects.filter(status="active").exists()
    assert any(c.is_overdue(date(2026, 6, 30)) for c in C.objects.all())
    books_ok()
