"""What a failed debit leads to: its category's action (debits.md), as the product's retry policy says.

Retry schedules are computed per debit in Python (they need the product policy and the calendar) and
written back in one statement per chunk; mandate suspension and cancellation go through the mandate
service; the borrower is told in plain words, with the next retry date or none and a pay-now link.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from django.db import connection

from servicing.domain.money import format_amount_grouped
from servicing.models import Debit, RetryState
from servicing.models.debits import RetryStatus
from servicing.models.mandates import CancelCause, MandateStatus
from servicing.services import audit

from .policy import ACTION_TEXT, PLAIN_REASON, next_retry, policy_for, should_notify

logger = logging.getLogger(__name__)


@dataclass
class Failure:
    debit_id: int
    category: str
    failed_on: date


def pay_url(loan) -> str:
    """The borrower's pay-now link for this loan, built like every other link in notices."""
    from notices.conf import conf, public_url

    return public_url(f"{conf('PAY_PATH')}{loan.contract_no}/")


def apply_failures(failures: list[Failure]) -> dict[int, str]:
    """Apply each failure's category action. Returns {debit_id: action text} for the attempt to record."""
    if not failures:
        return {}
    debits = {d.pk: d for d in Debit.objects.filter(pk__in=[f.debit_id for f in failures])
              .select_related("loan__product", "loan__borrower", "mandate", "instalment")}
    loan_ids = {d.loan_id for d in debits.values()}
    states: dict[int, list[RetryState]] = {}
    for rs in RetryState.objects.filter(loan_id__in=loan_ids, status__in=[RetryStatus.IN_FLIGHT]):
        states.setdefault(rs.loan_id, []).append(rs)
    trigger_states = {rs.instalment_id: rs for rs in RetryState.objects.filter(
        instalment_id__in=[d.instalment_id for d in debits.values()])}
    upserts: dict[int, tuple] = {}
    actions: dict[int, str] = {}
    from .bulk_notices import notify_many

    pending_notices: list[tuple] = []
    for f in failures:
        debit = debits[f.debit_id]
        loan = debit.loan
        policy = policy_for(loan.product, f.category)
        action = policy.get("action", "stop")
        rs = trigger_states.get(debit.instalment_id)
        related = [s for s in states.get(loan.pk, []) if s.instalment_id != debit.instalment_id]
        failures_before = rs.failures if rs else 0
        retries_used = rs.retries_used if rs else 0
        first = rs.first_failed_on if rs else f.failed_on
        nxt = next_retry(policy, first_failed_on=first, failed_on=f.failed_on, retries_used=retries_used)
        if action == "retry":
            status = RetryStatus.SCHEDULED if nxt else RetryStatus.EXHAUSTED
        else:
            status = RetryStatus.STOPPED
        for s in related:
            s_next = next_retry(policy, first_failed_on=s.first_failed_on, failed_on=f.failed_on,
                                retries_used=s.retries_used)
            s_status = ((RetryStatus.SCHEDULED if s_next else RetryStatus.EXHAUSTED) if action == "retry"
                        else RetryStatus.STOPPED)
            upserts[s.instalment_id] = (s.instalment_id, loan.pk, s.first_failed_on, s.failures + 1,
                                        s.retries_used, s_next, s_status, f.category, debit.pk)
        upserts[debit.instalment_id] = (debit.instalment_id, loan.pk, first, failures_before + 1, retries_used, nxt,
                                        status, f.category, debit.pk)
        text = ACTION_TEXT.get(action, action)
        if nxt:
            text = f"retry on {nxt.isoformat()}"
        elif action == "retry":
            text = "retries exhausted, no retry"
        mandate = debit.mandate
        if action == "suspend" and mandate.status == MandateStatus.ACTIVE:
            from servicing.services.mandates import suspend_mandate

            suspend_mandate(mandate, reason=f"debit {debit.reference}: {f.category}")
        elif action == "cancel" and mandate.status != MandateStatus.CANCELLED:
            from servicing.services.mandates import cancel_mandate

            cancel_mandate(mandate, cause=CancelCause.BANK, reason=f"debit {debit.reference}: {f.category}")
        if policy.get("alert_ops"):
            logger.error("technical debit failure %s (%s): ops must check the file/format/signature",
                         debit.reference, f.category)
            audit.record("debit.technical_alert", debit, reason=f"category {f.category}")
            text = "no retry, ops alerted"
        if should_notify(policy, failures_before):
            url = pay_url(loan)
            next_step = (f"我们将于 {nxt.isoformat()} 再次尝试扣款，您也可以通过 {url} 主动还款" if nxt
                         else f"本期不再自动扣款，请通过 {url} 主动还款，逾期将产生罚息并影响征信")
            context = {
                "reason": str(PLAIN_REASON.get(f.category, PLAIN_REASON["unclassified"])),
                "category": f.category, "amount": format_amount_grouped(debit.amount), "next_step": next_step,
                "next_retry_on": nxt.isoformat() if nxt else "", "pay_url": url,
            }
            pending_notices.append((loan, debit, f.failed_on, context))
        actions[debit.pk] = text
    notify_many("debit_failed", pending_notices)  # a large import: one COPY, not notify() each
    _upsert_states(list(upserts.values()))
    return actions


def _upsert_states(rows: list[tuple]) -> None:
    if not rows:
        return
    cols = list(zip(*rows, strict=True))
    with connection.cursor() as cur:
        cur.execute("""
            INSERT INTO servicing_retrystate (instalment_id, loan_id, first_failed_on, failures, retries_used,
                                              next_retry_on, status, last_category, last_debit_id, next_kind,
                                              updated_at)
            SELECT x.*, 'retry', now()
              FROM unnest(%s::bigint[], %s::bigint[], %s::date[], %s::int[], %s::int[], %s::date[], %s::text[],
                          %s::text[], %s::bigint[]) AS x
            ON CONFLICT (instalment_id) DO UPDATE
               SET failures = EXCLUDED.failures, retries_used = EXCLUDED.retries_used,
                   next_retry_on = EXCLUDED.next_retry_on, status = EXCLUDED.status,
                   last_category = EXCLUDED.last_category, last_debit_id = EXCLUDED.last_debit_id,
                   next_kind = 'retry', updated_at = now()""", [list(c) for c in cols])
