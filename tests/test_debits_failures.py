"""Failed debits' actions, set-based: the same failures applied through notify() one by one (a few) and through the
bulk INSERT (many) leave the same retry states, mandates, answers and notices, in each borrower's language."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction

from notices.catalog import event_spec
from notices.models import Notice
from notices.services.events import notice_context
from servicing.domain.money import format_amount_grouped
from servicing.models import AuditLog, Debit, Instalment, Mandate, RetryState
from servicing.services.business_day import bill_due_instalments
from servicing.services.debits.batches import create_debit_batch, export_debit_batch
from servicing.services.debits.failures import (
    Failure,
    apply_failures,
    failure_context,
    failure_wording,
    pay_url,
)

from .test_debits_support import FIRST_DUE, debits_of, make_loan, ref_data_fixture  # noqa: F401

CATEGORIES = ["insufficient_funds", "insufficient_funds", "limit_daily_monthly", "channel_down", "limit_single",
              "account_state", "technical", "unclassified"]


@pytest.fixture(name="failed")
def failed_fixture(ref_data, tmp_path):
    """One submitted debit per category; the second insufficient-funds loan failed before on the same instalment
    (so it is not told again), the first has an older instalment still being retried."""
    channel = ref_data["std"]
    loans = [make_loan(i, channel) for i in range(1, len(CATEGORIES) + 1)]
    english = loans[0].borrower
    english.language = "en"
    english.save(update_fields=["language"])
    bill_due_instalments(FIRST_DUE)
    batch = create_debit_batch(FIRST_DUE, channel).batch
    export_debit_batch(batch, tmp_path / "out.csv")
    debits = debits_of(batch)
    earlier = FIRST_DUE - timedelta(days=3)
    RetryState.objects.create(instalment=debits[1].instalment, loan=debits[1].loan, first_failed_on=earlier,
                              failures=1, retries_used=1, status="in_flight", last_category="insufficient_funds")
    other = Instalment.objects.get(loan=loans[0], seq=2)  # another instalment of the first loan, being retried
    RetryState.objects.create(instalment=other, loan=loans[0], first_failed_on=earlier, failures=2, retries_used=2,
                              status="in_flight", last_category="insufficient_funds")
    return [Failure(d.pk, cat, FIRST_DUE) for d, cat in zip(debits, CATEGORIES, strict=True)]


def _outcome(actions: dict) -> dict:
    notices = Notice.objects.filter(event="debit_failed").order_by("dedupe_key")
    return {
        "actions": actions,
        "notices": [(n.channel, n.language, n.borrower_id, n.loan_id, n.object_type, n.object_id, n.on_date,
                     n.dedupe_key, n.status, n.collection, n.context) for n in notices],
        "states": list(RetryState.objects.order_by("instalment_id").values(
            "instalment_id", "loan_id", "first_failed_on", "failures", "retries_used", "next_retry_on", "status",
            "last_category", "last_debit_id", "next_kind")),
        "mandates": list(Mandate.objects.order_by("pk").values_list("pk", "status", "suspend_reason")),
        "alerts": list(AuditLog.objects.filter(action="debit.technical_alert").values_list("object_id", "reason")),
    }


def _apply(failed, settings, threshold: int) -> dict:
    settings.REPAYDESK = {**settings.REPAYDESK, "INLINE_RECEIPTS_MAX": threshold}
    with transaction.atomic():
        outcome = _outcome(apply_failures(failed))
        transaction.set_rollback(True)
    return outcome


def test_bulk_and_one_by_one_paths_leave_the_same_states_answers_and_notices(failed, settings):
    one_by_one = _apply(failed, settings, threshold=1000)
    bulk = _apply(failed, settings, threshold=0)
    assert bulk == one_by_one
    assert len(bulk["notices"]) == 2 * 5  # sms and in-app for the 5 told (2 policies never tell, 1 was told before)


def test_each_failure_gets_its_action_its_retry_and_words_in_the_borrowers_language(failed, settings):
    settings.REPAYDESK = {**settings.REPAYDESK, "INLINE_RECEIPTS_MAX": 0}  # the bulk INSERT
    actions = apply_failures(failed)
    debits = {f.debit_id: Debit.objects.select_related("loan__borrower").get(pk=f.debit_id) for f in failed}
    d1 = FIRST_DUE + timedelta(days=1)
    # insufficient funds: 1 day after the first failure, and for the loan on its second retry 3 days after its
    # first failure, but never before tomorrow; channel down: the next working day (2026-12-01 is a Tuesday)
    assert [actions[f.debit_id] for f in failed] == [
        f"retry on {d1}", f"retry on {d1}", f"retry on {d1}", f"retry on {d1}", "no retry",
        "mandate suspended, no retry", "no retry, ops alerted", "no retry"]
    first, second = (debits[f.debit_id] for f in failed[:2])
    state = RetryState.objects.get(instalment=second.instalment)
    assert (state.failures, state.retries_used, state.first_failed_on) == (2, 1, FIRST_DUE - timedelta(days=3))
    assert (state.status, state.next_retry_on, state.last_debit_id) == ("scheduled", d1, second.pk)
    # the first loan's older instalment follows this failure's schedule: its third retry, 7 days after it first failed
    older = RetryState.objects.get(loan=first.loan, instalment__seq=2)
    assert (older.failures, older.retries_used, older.status, older.last_debit_id) == (3, 2, "scheduled", first.pk)
    assert older.next_retry_on == FIRST_DUE + timedelta(days=4)
    assert Mandate.objects.get(loan=debits[failed[5].debit_id].loan).status == "suspended"

    spec = event_spec("debit_failed")
    category = {f.debit_id: f.category for f in failed}
    told = {f.debit_id for f, cat in zip(failed, CATEGORIES, strict=True)
            if cat in ("limit_daily_monthly", "limit_single", "account_state", "unclassified")} | {first.pk}
    assert {int(n.object_id) for n in Notice.objects.filter(event="debit_failed")} == told
    for debit_id in told:
        debit = debits[debit_id]
        loan = debit.loan
        notices = Notice.objects.filter(event="debit_failed", object_id=str(debit_id))
        assert {n.channel for n in notices} == set(spec.channels)
        nxt = RetryState.objects.get(instalment=debit.instalment).next_retry_on
        given = failure_context(failure_wording(loan.borrower.language), category=category[debit_id],
                                amount=format_amount_grouped(debit.amount),
                                next_retry_on=nxt.isoformat() if nxt else "", url=pay_url(loan))
        want = notice_context(spec, loan, debit, FIRST_DUE, given)
        for n in notices:
            assert n.context == want and n.language == loan.borrower.language and n.status == "queued"
    english = Notice.objects.get(event="debit_failed", object_id=str(first.pk), channel="sms")
    assert english.language == "en"
    assert english.context["reason"] == "insufficient balance in the debit account"
    assert english.context["next_step"] == (f"We will try the debit again on {d1}; you can also pay now at "
                                            f"{pay_url(first.loan)}")
    limit = Notice.objects.get(event="debit_failed", object_id=str(failed[4].debit_id), channel="sms")
    assert limit.context["reason"] == "超过银行卡单笔扣款限额" and limit.context["next_step"].startswith("本期不再自动扣款")
    # the same answer applied again (a re-run): the borrower is not told twice
    assert apply_failures(failed[4:5]) == {failed[4].debit_id: "no retry"}
    assert Notice.objects.filter(event="debit_failed", object_id=str(failed[4].debit_id)).count() == 2


def test_failures_applied_one_at_a_time_in_one_transaction_take_no_more_locks(failed):
    """A caller applying failures one by one in one long transaction (as django-import-export would, a row at a
    time): each call reuses the transaction's work tables. Created and dropped per call, each held a lock until
    the commit, and a thousand calls ran the server out of lock slots ("out of shared memory")."""
    from django.db import connection

    def locks() -> int:
        with connection.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM pg_locks WHERE pid = pg_backend_pid()")
            return cur.fetchone()[0]

    with transaction.atomic():
        apply_failures(failed)
        for failure in failed:  # every table and lock mode the calls use, once
            apply_failures([failure])
        held = locks()
        for failure in failed * 3:
            apply_failures([failure])
        assert locks() == held
