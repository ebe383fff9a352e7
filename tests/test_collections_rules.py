"""Contact rules at their edges, enforced by the one service every contact goes through."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from collections_app import rules
from collections_app.models import CaseEvent, ContactAttempt, ContactPerson
from collections_app.services.cases import NotAllowed
from collections_app.services.contacts import dial, record_contact, set_outcome
from servicing.models import AuditLog

from .test_collections_support import book, make_world, open_case, run_days

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db, django_user_model):
    return make_world(django_user_model)
BJ = rules.tz()
DAY = date(2026, 5, 21)


def at(h: int, m: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, h, m, tzinfo=BJ)


@pytest.fixture
def case(world):
    loan = book(world["product"])
    run_days(date(2026, 5, 15), date(2026, 5, 20))
    c = open_case(loan)
    c.assigned_to = world["collector"]
    c.save(update_fields=["assigned_to"])
    return c


def call(case, actor, when, outcome="connected", **kw):
    kw.setdefault("identity_stated", True)
    return record_contact(case=case, channel="call", outcome=outcome, actor=actor, at=when, **kw)


def test_quiet_hours_edges(case, world):
    ok = call(case, world["collector"], at(21, 59))
    assert ok.allowed
    refused = call(case, world["collector"], at(22, 0))
    assert not refused.allowed and refused.refused_rule == rules.QUIET_HOURS
    assert refused.outcome == "refused" and "22:00" in refused.refusal_message
    assert not call(case, world["collector"], at(7, 59)).allowed
    # the refusal is logged: attempt row, timeline, audit
    assert CaseEvent.objects.filter(case=case, kind="contact_refused", data__rule=rules.QUIET_HOURS).exists()
    assert AuditLog.objects.filter(action="collections.contact_refused").count() == 2


def test_fourth_connected_call_of_the_day_refused(case, world):
    c = world["collector"]
    for h in (9, 10, 11):
        assert call(case, c, at(h)).allowed
    fourth = call(case, c, at(12))
    assert not fourth.allowed and fourth.refused_rule == rules.CONNECTED_CALLS
    # another collector (or an agency) counts toward the same borrower's cap
    case.assigned_to = world["collector2"]
    case.save(update_fields=["assigned_to"])
    assert call(case, world["collector2"], at(13)).refused_rule == rules.CONNECTED_CALLS
    # next day the count starts again
    assert call(case, world["collector2"], at(9, day=date(2026, 5, 22))).allowed


def test_unanswered_dials_per_number(case, world):
    c = world["collector"]
    for m in range(6):
        assert call(case, c, at(9, m), outcome="no_answer").allowed
    seventh = call(case, c, at(9, 30), outcome="no_answer")
    assert not seventh.allowed and seventh.refused_rule == rules.UNANSWERED_DIALS


def test_contact_person_only_when_borrower_unreachable(case, world):
    c = world["collector"]
    person = ContactPerson.objects.create(borrower=case.borrower, name="王五", relation="朋友", phone="13700000001")
    first = call(case, c, at(9), target="contact", contact_person=person)
    assert not first.allowed and first.refused_rule == rules.THIRD_PARTY_REACHABLE
    for m in (10, 11):
        call(case, c, at(m), outcome="no_answer")
    assert call(case, c, at(12), target="contact", contact_person=person).refused_rule == rules.THIRD_PARTY_REACHABLE
    call(case, c, at(13), outcome="unreachable")  # third failed attempt: the borrower is unreachable
    ok = call(case, c, at(14), target="contact", contact_person=person, outcome="person_refused")
    assert ok.allowed and ok.number == "13700000001"
    # never the debt details, and not again once the person refused
    person.refresh_from_db()
    assert person.refused
    again = call(case, c, at(15), target="contact", contact_person=person)
    assert not again.allowed and again.refused_rule == rules.THIRD_PARTY_REFUSED
    other = ContactPerson.objects.create(borrower=case.borrower, name="赵六", relation="同事", phone="13700000002")
    told = call(case, c, at(15, 30), target="contact", contact_person=other, discloses_debt=True)
    assert not told.allowed and told.refused_rule == rules.THIRD_PARTY_DEBT


def test_first_contact_must_state_identity(case, world):
    first = call(case, world["collector"], at(9), identity_stated=False)
    assert not first.allowed and first.refused_rule == rules.IDENTITY
    assert call(case, world["collector"], at(9, 5), identity_stated=True).allowed
    assert call(case, world["collector"], at(9, 10), identity_stated=False).allowed  # later calls need not repeat it


def test_supervisor_override_needs_reason_and_is_logged(case, world):
    with pytest.raises(NotAllowed):
        call(case, world["collector"], at(22, 30), override_reason="借款人要求晚间回电")
    attempt = call(case, world["supervisor"], at(22, 30), override_reason="借款人书面同意晚间联系")
    assert attempt.allowed and attempt.overridden_rule == rules.QUIET_HOURS
    assert attempt.override_by == world["supervisor"] and attempt.override_reason == "借款人书面同意晚间联系"
    ev = CaseEvent.objects.get(case=case, kind="override")
    assert ev.detail == "借款人书面同意晚间联系" and ev.data["rule"] == rules.QUIET_HOURS
    log = AuditLog.objects.get(action="collections.contact_override")
    assert log.reason == "借款人书面同意晚间联系" and log.actor == world["supervisor"]


def test_dial_reveals_number_only_when_allowed(case, world):
    attempt, number = dial(case=case, actor=world["collector"], at=at(10))
    assert attempt.allowed and number == case.borrower.phone and attempt.outcome == "pending"
    set_outcome(attempt=attempt, outcome="connected", actor=world["collector"])
    refused, number = dial(case=case, actor=world["collector"], at=at(22, 1))
    assert not refused.allowed and number == ""


def test_collector_cannot_contact_on_another_collectors_case(case, world):
    with pytest.raises(NotAllowed):
        call(case, world["collector2"], at(10))
    assert not ContactAttempt.objects.filter(actor=world["collector2"]).exists()
