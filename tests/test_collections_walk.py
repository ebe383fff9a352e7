"""A loan walked through business days: open after grace, stages on the right days, lawful messages,
promises kept and broken, cure closes the case, re-default reopens it; re-running a day adds nothing."""

from __future__ import annotations

from datetime import date, time, timedelta
from decimal import Decimal

import pytest

from collections_app import rules
from collections_app.models import (
    CaseEvent,
    CaseStatus,
    CollectionCase,
    ContactAttempt,
    EscalationRequest,
    PromiseToPay,
)
from collections_app.services.business_day import step
from collections_app.services.cases import decide_escalation
from collections_app.services.complaints import answer_complaint, file_complaint
from collections_app.services.work import make_promise
from servicing.services.accrual import grace_end
from servicing.services.business_day import run_business_day
from servicing.services.verify import verify_books

from .test_collections_support import book, make_world, open_case, pay, run_days

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db, django_user_model):
    return make_world(django_user_model)


def stage_on(loan, d: date) -> int:
    run_business_day(d)
    return open_case(loan).stage


def test_month_walk(world):
    loan = book(world["product"])
    collector = world["collector"]

    # due May 15 with 3 grace days (the end rolled to a working day as the core's penalty accrual does)
    open_day = grace_end(date(2026, 5, 15), world["product"]) + timedelta(days=1)
    run_days(date(2026, 5, 14), open_day - timedelta(days=1))  # within grace: no case yet
    assert not CollectionCase.objects.exists()
    loan.refresh_from_db()
    assert loan.status == "overdue"

    run_business_day(open_day)  # the day after grace ends: the case opens, stage 1, assigned
    case = open_case(loan)
    assert case.opened_on == open_day and case.stage == 1 and case.bucket == "M1"
    assert case.dpd == (open_day - date(2026, 5, 15)).days
    assert case.assigned_to in (collector, world["collector2"])
    assert case.overdue_principal > 0 and case.overdue_interest > 0
    assert CaseEvent.objects.filter(case=case, kind="opened").count() == 1
    msgs = ContactAttempt.objects.filter(case=case, automatic=True)
    assert sorted(msgs.values_list("channel", flat=True)) == ["in_app", "sms"]
    assert all(m.allowed for m in msgs)

    # re-running the date changes nothing
    before = (CaseEvent.objects.count(), ContactAttempt.objects.count())
    run_business_day(open_day)
    assert (CaseEvent.objects.count(), ContactAttempt.objects.count()) == before

    # stage 2 at grace end + 4 = DPD 7 (May 22), not before
    assert stage_on(loan, date(2026, 5, 20)) == 1
    case.assigned_to = collector
    case.save(update_fields=["assigned_to"])
    kept = make_promise(case=case, amount="100", due_date=date(2026, 5, 25), actor=collector,
                        on_date=date(2026, 5, 20))
    assert stage_on(loan, date(2026, 5, 21)) == 1
    assert stage_on(loan, date(2026, 5, 22)) == 2

    pay(loan, "100.00", date(2026, 5, 23), "P-kept")
    run_business_day(date(2026, 5, 23))
    kept.refresh_from_db()
    assert kept.status == PromiseToPay.Status.KEPT and kept.paid_amount == Decimal("100.00")

    broken = make_promise(case=case, amount="500", due_date=date(2026, 5, 26), actor=collector,
                          on_date=date(2026, 5, 24))
    run_days(date(2026, 5, 24), date(2026, 5, 26))
    broken.refresh_from_db()
    assert broken.status == PromiseToPay.Status.PENDING and open_case(loan).stage == 2
    run_business_day(date(2026, 5, 27))  # broken the day after its date → escalates one stage
    broken.refresh_from_db()
    case = open_case(loan)
    assert broken.status == PromiseToPay.Status.BROKEN and case.stage == 3 and case.broken_promises == 1
    assert CaseEvent.objects.filter(case=case, kind="promise_broken").exists()
    assert case.priority_reasons.get("broken_promises") == 20

    # every automatic message was scheduled at a lawful hour
    for attempt in ContactAttempt.objects.filter(automatic=True, allowed=True):
        assert time(8, 0) <= rules.local(attempt.at).time() < time(22, 0)

    # cure: paying everything overdue closes the case
    run_days(date(2026, 5, 28), date(2026, 6, 4))
    loan.refresh_from_db()
    from servicing.selectors import quote_payoff  # noqa: F401  (payoff not needed: pay the overdue instalment)
    inst = loan.instalments.get(seq=1)
    run_business_day(date(2026, 6, 5))
    inst.refresh_from_db()
    pay(loan, inst.total_outstanding + Decimal("5"), date(2026, 6, 5), "P-cure")
    run_business_day(date(2026, 6, 5))
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED and case.close_reason == "cured" and case.closed_on == date(2026, 6, 5)
    assert open_case(loan) is None
    assert loan.collection_cases.count() == 1

    # re-default: June 15 unpaid (5.00 credit applied) → reopened the day after its grace ends
    reopen_day = grace_end(date(2026, 6, 15), world["product"]) + timedelta(days=1)
    run_days(date(2026, 6, 6), reopen_day - timedelta(days=1))
    assert open_case(loan) is None
    run_business_day(reopen_day)
    again = open_case(loan)
    assert again is not None and again.pk != case.pk and again.prior_cures == 1
    assert CaseEvent.objects.filter(case=again, kind="reopened").exists()
    assert all(r.ok for r in verify_books()), [r for r in verify_books() if not r.ok]


def test_legal_needs_supervisor_approval(world):
    loan = book(world["product"])
    run_days(date(2026, 5, 15), date(2026, 5, 20))
    case = open_case(loan)
    # jump the figures: the step works from the loan book, so walk straight to DPD 61 (July 15)
    for d in (date(2026, 5, 31), date(2026, 6, 20), date(2026, 7, 14)):
        step(d)
    case.refresh_from_db()
    assert case.stage == 3
    assert not EscalationRequest.objects.exists()
    step(date(2026, 7, 15))  # DPD 61: stage 4 needs approval → a request, the case stays at 3
    case.refresh_from_db()
    req = EscalationRequest.objects.get(case=case)
    assert case.stage == 3 and req.status == "pending" and req.to_stage == 4
    step(date(2026, 7, 16))
    assert EscalationRequest.objects.filter(case=case).count() == 1

    # an open complaint blocks the approval; its answer unblocks it
    complaint = file_complaint(loan=loan, subject="催收电话太频繁", description="……", on_date=date(2026, 7, 16),
                               filed_by=world["supervisor2"])
    case.refresh_from_db()
    assert case.status == CaseStatus.PAUSED and case.pause_reason == "complaint"
    with pytest.raises(ValueError):
        decide_escalation(request=req, approve=True, actor=world["supervisor"], on_date=date(2026, 7, 16))
    answer_complaint(complaint=complaint, answer="已核实并调整", root_cause="contact_frequency",
                     actor=world["supervisor2"], on_date=date(2026, 7, 17))
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN
    with pytest.raises(ValueError):
        decide_escalation(request=req, approve=True, actor=world["collector"], on_date=date(2026, 7, 17))
    decide_escalation(request=req, approve=True, actor=world["supervisor"], on_date=date(2026, 7, 17))
    case.refresh_from_db()
    assert case.stage == 4


def test_a_channel_incident_pauses_the_case_for_its_window(world):
    from servicing.models import Channel
    from servicing.services.debits.incidents import close_incident, open_incident

    loan = book(world["product"])
    run_days(date(2026, 5, 15), date(2026, 5, 20))
    case = open_case(loan)
    assert case.status == CaseStatus.OPEN and case.stage == 1
    # ops find out that the bank's channel was down since the due date: the borrower is not at fault
    incident = open_incident(channel=Channel.objects.get(code="std"), window_start=date(2026, 5, 15),
                             title="bank outage", loans=[loan])
    step(date(2026, 5, 21))
    case.refresh_from_db()
    assert case.status == CaseStatus.PAUSED and case.pause_reason == "incident"
    messages = ContactAttempt.objects.filter(case=case, automatic=True).count()
    for d in (date(2026, 5, 31), date(2026, 6, 20), date(2026, 7, 14)):  # DPD enough for stage 3 meanwhile
        step(d)
    case.refresh_from_db()
    assert (case.status, case.stage) == (CaseStatus.PAUSED, 1)  # no escalation, no reminders in the window
    assert ContactAttempt.objects.filter(case=case, automatic=True).count() == messages
    assert CaseEvent.objects.filter(case=case, kind="paused").count() == 1

    close_incident(incident, back_on=date(2026, 7, 14))  # the window ends that day
    step(date(2026, 7, 15))
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN and case.pause_reason == ""
    assert CaseEvent.objects.filter(case=case, kind="resumed").exists()


def test_messages_in_quiet_hours_are_refused_and_logged(world, settings):
    settings.COLLECTIONS = {**settings.COLLECTIONS, "MESSAGE_TIME": "22:00"}
    loan = book(world["product"])
    open_day = grace_end(date(2026, 5, 15), world["product"]) + timedelta(days=1)
    run_days(date(2026, 5, 15), open_day)
    attempts = ContactAttempt.objects.filter(case=open_case(loan), automatic=True)
    assert attempts.count() == 2
    assert all(not a.allowed and a.refused_rule == rules.QUIET_HOURS for a in attempts)
    assert CaseEvent.objects.filter(kind="contact_refused").count() == 2
    case = open_case(loan)
    assert case.next_action_on == open_day + timedelta(days=1)  # tried again tomorrow


def test_message_caps_per_borrower(world, settings):
    settings.COLLECTIONS = {**settings.COLLECTIONS, "MAX_MESSAGES_PER_DAY": 1}
    loan = book(world["product"])
    run_days(date(2026, 5, 15), date(2026, 5, 20))
    attempts = ContactAttempt.objects.filter(case=open_case(loan), automatic=True).order_by("channel")
    assert [(a.channel, a.allowed, a.refused_rule) for a in attempts] in (
        [("in_app", True, ""), ("sms", False, rules.MESSAGES_DAY)], [("in_app", False, rules.MESSAGES_DAY), ("sms", True, "")])
