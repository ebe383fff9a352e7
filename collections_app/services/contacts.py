"""Making contact: one function checks the rules and logs the attempt, for every path.

A refused contact is recorded (allowed=False, the rule and its message) and returned, not raised, so the
refusal is kept; callers show `attempt.refusal_message`. A supervisor override needs a reason and is
logged on the attempt, on the case timeline and in the audit log.
"""

from __future__ import annotations

from datetime import date, datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from collections_app import rules
from collections_app.models import (
    Channel,
    CollectionCase,
    ContactAttempt,
    ContactPerson,
    EventKind,
    Outcome,
    Target,
)
from servicing.models import Borrower
from servicing.services import audit

from .cases import CollectionsError, NotAllowed, add_event, is_supervisor, require_case_access


def _number_for(case: CollectionCase, target: str, contact_person: ContactPerson | None) -> str:
    if target == Target.CONTACT:
        if contact_person is None or contact_person.borrower_id != case.borrower_id:
            raise CollectionsError(_("请选择该借款人的紧急联系人"))
        return contact_person.phone
    return case.borrower.phone


@transaction.atomic
def record_contact(*, case: CollectionCase, channel: str, outcome: str, actor=None, at: datetime | None = None,
                   target: str = Target.BORROWER, contact_person: ContactPerson | None = None,
                   identity_stated: bool = False, discloses_debt: bool = False, notes: str = "",
                   override_reason: str = "", on_date: date | None = None, automatic: bool = False,
                   dedupe_key: str | None = None) -> ContactAttempt:
    """Check the contact rules at `at` and log the contact (or its refusal).

    The borrower's row is locked so two collectors (or a collector and an agency) counting towards the same
    daily cap are serialised. `override_reason` from a supervisor lets a refused contact through, logged.
    """
    at = at or timezone.now()
    if actor is not None and not automatic:
        require_case_access(actor, case)
    if override_reason and not is_supervisor(actor):
        raise NotAllowed(_("只有主管可以越权放行"))
    if channel not in Channel.values or outcome not in Outcome.values or target not in Target.values:
        raise CollectionsError(_("渠道、结果或联系对象无效"))
    Borrower.objects.select_for_update().filter(pk=case.borrower_id).first()
    number = _number_for(case, target, contact_person) if channel == Channel.CALL else ""
    verdict = rules.check_contact(borrower_id=case.borrower_id, channel=channel, at=at, target=target, number=number,
                                  contact_person=contact_person, case_id=case.pk, identity_stated=identity_stated,
                                  discloses_debt=discloses_debt)
    override = bool(not verdict and override_reason.strip())
    allowed = bool(verdict) or override
    local_at = rules.local(at)
    attempt = ContactAttempt.objects.create(
        case=case, borrower_id=case.borrower_id, loan_id=case.loan_id, channel=channel, target=target,
        contact_person=contact_person, number=number, at=at, local_date=local_at.date(),
        business_date=on_date or local_at.date(), outcome=outcome if allowed else Outcome.REFUSED, allowed=allowed,
        refused_rule="" if allowed else verdict.rule, refusal_message="" if allowed else verdict.message,
        override_by=actor if override else None, override_reason=override_reason.strip() if override else "",
        overridden_rule=verdict.rule if override else "",
        actor=actor if getattr(actor, "is_authenticated", False) else None, automatic=automatic,
        identity_stated=identity_stated, discloses_debt=discloses_debt, agency=case.agency,
        notes=notes, dedupe_key=dedupe_key)
    day = on_date or local_at.date()
    if not allowed:
        add_event(case, EventKind.CONTACT_REFUSED, on_date=day, at=at, actor=actor, detail=verdict.message,
                  data={"rule": verdict.rule, "channel": channel, "attempt": attempt.pk})
        audit.record("collections.contact_refused", attempt, actor=actor, rule=verdict.rule, channel=channel,
                     target=target, case=case.pk)
        return attempt
    if override:
        add_event(case, EventKind.OVERRIDE, on_date=day, at=at, actor=actor, detail=override_reason[:300],
                  data={"rule": verdict.rule, "attempt": attempt.pk})
        audit.record("collections.contact_override", attempt, actor=actor, reason=override_reason,
                     rule=verdict.rule, case=case.pk)
    add_event(case, EventKind.CONTACT, on_date=day, at=at, actor=actor,
              detail=f"{Channel(channel).label} · {Outcome(outcome).label}",
              data={"channel": channel, "outcome": outcome, "target": target, "attempt": attempt.pk})
    audit.record("collections.contact", attempt, actor=actor, channel=channel, outcome=outcome, target=target,
                 case=case.pk)
    if target == Target.CONTACT and outcome == Outcome.PERSON_REFUSED and contact_person is not None:
        ContactPerson.objects.filter(pk=contact_person.pk).update(refused=True)
    return attempt


@transaction.atomic
def dial(*, case: CollectionCase, actor, at: datetime | None = None, target: str = Target.BORROWER,
         contact_person: ContactPerson | None = None, identity_stated: bool = True,
         override_reason: str = "") -> tuple[ContactAttempt, str]:
    """The system dials for the collector: the only way a collector gets the unmasked number.

    Returns the attempt (outcome pending, to be completed with `set_outcome`) and the number for the
    softphone; a refused dial returns an empty number.
    """
    attempt = record_contact(case=case, channel=Channel.CALL, outcome=Outcome.PENDING, actor=actor, at=at,
                             target=target, contact_person=contact_person, identity_stated=identity_stated,
                             override_reason=override_reason)
    return attempt, attempt.number if attempt.allowed else ""


@transaction.atomic
def set_outcome(*, attempt: ContactAttempt, outcome: str, actor, notes: str = "") -> ContactAttempt:
    """Complete a dialled call with what happened."""
    attempt = ContactAttempt.objects.select_for_update(of=("self",)).select_related("case").get(pk=attempt.pk)
    require_case_access(actor, attempt.case)
    if attempt.outcome != Outcome.PENDING or outcome in (Outcome.PENDING, Outcome.REFUSED, Outcome.SENT):
        raise CollectionsError(_("该联系记录的结果不能再修改"))
    attempt.outcome, attempt.notes = outcome, (attempt.notes + "\n" + notes).strip()
    attempt.save(update_fields=["outcome", "notes"])
    add_event(attempt.case, EventKind.CONTACT, on_date=attempt.business_date or attempt.local_date, at=attempt.at,
              actor=actor, detail=f"{Channel(attempt.channel).label} · {Outcome(outcome).label}",
              data={"attempt": attempt.pk, "outcome": outcome})
    audit.record("collections.contact_outcome", attempt, actor=actor, outcome=outcome)
    if attempt.target == Target.CONTACT and outcome == Outcome.PERSON_REFUSED and attempt.contact_person_id:
        ContactPerson.objects.filter(pk=attempt.contact_person_id).update(refused=True)
    return attempt


# --------------------------------------------------------------------------------------------------
# Automatic messages (the business day's overdue reminders)
# --------------------------------------------------------------------------------------------------

def send_automatic_message(attempt_id: int) -> bool:
    """Hand one claimed automatic message to the notices outbox (call inside a transaction).

    Claims with a conditional update, so two workers (or a re-run) never queue the same message twice.
    """
    claimed = ContactAttempt.objects.filter(pk=attempt_id, notice_state="pending").update(notice_state="queued")
    if not claimed:
        return False
    attempt = ContactAttempt.objects.select_related("case", "loan", "case__loan").get(pk=attempt_id)
    case = attempt.case
    from notices.services.events import notify

    # the outbox builds the figures (DPD, amounts by component as of the date) from the servicing core;
    # `now` is the scheduled time, so quiet hours are judged by when the message goes out
    notify("overdue_reminder", loan=case.loan, obj=case, on_date=attempt.business_date, channels=[attempt.channel],
           collection=True, now=attempt.at, context={"stage": str(case.stage)})
    return True


def send_automatic_messages(attempt_ids: list[int]) -> int:
    sent = 0
    with transaction.atomic():
        for pk in attempt_ids:
            sent += send_automatic_message(pk)
    return sent
