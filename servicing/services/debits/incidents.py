"""Incidents (渠道事故): mass failures on a channel, the institution's fault.

For the affected loans and the incident window: penalty accrual and DPD stop counting (the business day's
accrual skips them, see services/business_day.py accrue_penalties, and the debits step keeps their
clock and DPD still), they are not debited while the incident is open (incident hold), penalty already
charged in the window is waived in bulk with one approval (four eyes), the affected debits are presented
again when the channel is back, each borrower gets one apology, and a report says what happened.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from servicing.domain.money import ZERO, format_amount
from servicing.models import Channel, Debit, DebitBatch, Incident, IncidentLoan, Instalment, Loan
from servicing.models.debits import IncidentStatus
from servicing.models.ledger import Account, EntryKind
from servicing.services import audit
from servicing.services.ledger import Leg, post_entry

from .policy import INSTITUTION_SIDE


class IncidentError(ValueError):
    pass


def _threshold() -> tuple[Decimal, int]:
    cfg = settings.REPAYDESK
    return Decimal(str(cfg.get("INCIDENT_THRESHOLD_PCT", "5"))), int(cfg.get("INCIDENT_MIN_DEBITS", 50))


def detect_incidents(batch_ids: list[int], *, result_file=None) -> list[str]:
    """Open an incident for each batch whose institution-side failures exceed the threshold
    (default: more than 5 % of the batch and at least 50 debits). Idempotent per batch."""
    pct, minimum = _threshold()
    opened = []
    for batch in DebitBatch.objects.filter(pk__in=batch_ids).select_related("channel"):
        bad = batch.debits.filter(category__in=INSTITUTION_SIDE, status__in=["failed", "unknown"])
        n = bad.count()
        total = batch.control_count or batch.debits.exclude(status="cancelled").count()
        if n < minimum or n * 100 <= pct * total:
            continue
        if Incident.objects.filter(batch=batch, automatic=True).exists():
            continue
        incident = open_incident(channel=batch.channel, window_start=batch.business_date, batch=batch,
                                 automatic=True, debits=list(bad),
                                 title=f"{batch.channel.code}: {n}/{total} debits failed institution-side "
                                       f"on {batch.business_date}")
        opened.append(incident.reference)
    return opened


@transaction.atomic
def open_incident(*, channel: Channel, window_start: date, title: str, user=None, batch: DebitBatch | None = None,
                  automatic: bool = False, debits: list[Debit] | None = None,
                  loans: list[Loan] | None = None) -> Incident:
    """Open an incident (automatically or by hand) and attach the affected loans.

    By hand without a list, the affected loans are those whose debits on the channel since `window_start`
    failed institution-side (channel_down, technical, unknown).
    """
    n = Incident.objects.filter(opened_at__date=timezone.localdate()).count() + 1
    incident = Incident.objects.create(
        reference=f"INC{window_start:%Y%m%d}-{channel.code}-{n}"[:40], channel=channel, batch=batch,
        automatic=automatic, title=title[:200], window_start=window_start,
        opened_by=user if getattr(user, "is_authenticated", False) else None)
    if debits is None and loans is None:
        debits = list(Debit.objects.filter(batch__channel=channel, batch__business_date__gte=window_start,
                                           category__in=INSTITUTION_SIDE, status__in=["failed", "unknown"]))
    add_affected(incident, debits=debits or [], loans=loans or [])
    audit.record("incident.opened", incident, actor=user, automatic=automatic, channel=channel.code)
    return incident


def add_affected(incident: Incident, *, debits: list[Debit] = (), loans: list[Loan] = ()) -> int:
    rows = {d.loan_id: IncidentLoan(incident=incident, loan_id=d.loan_id, debit=d) for d in debits}
    for loan in loans:
        rows.setdefault(loan.pk, IncidentLoan(incident=incident, loan_id=loan.pk))
    created = IncidentLoan.objects.bulk_create(rows.values(), ignore_conflicts=True)
    from notices.services import events

    for il in IncidentLoan.objects.filter(incident=incident, loan_id__in=list(rows)).select_related("loan__borrower"):
        url = f"{settings.REPAYDESK.get('PUBLIC_BASE_URL', '').rstrip('/')}/pay/{il.loan.contract_no}/"
        events.notify("incident_apology", loan=il.loan, obj=incident, on_date=incident.window_start, context={
            "incident_summary": f"{incident.window_start.isoformat()} 起{incident.channel.name}系统故障，"
                                f"代扣未能正常执行，期间不计罚息、不影响征信",
            "what_to_do": f"无需操作，渠道恢复后我们将重新扣款；您也可以通过 {url} 主动还款",
            "pay_url": url,
        })
    return len(created)


FROZEN_SQL = """
    SELECT il.loan_id FROM servicing_incidentloan il JOIN servicing_incident inc ON inc.id = il.incident_id
     WHERE inc.window_start <= %(d)s AND (inc.window_end IS NULL OR inc.window_end >= %(d)s)
"""


def freeze_for_day(d: date) -> dict:
    """Keep the penalty clock and DPD still for loans inside an incident window on `d`.

    accrue_penalties skips those loans (NOT EXISTS on servicing_incidentloan); here their instalments'
    `penalty_accrued_through` moves to `d` without accruing, so the days of the window are never charged
    later; and DPD leaves out the days that fell inside any incident window of the loan.
    """
    with connection.cursor() as cur:
        cur.execute(f"""UPDATE servicing_instalment i SET penalty_accrued_through = %(d)s
                          WHERE i.status = 'overdue' AND i.loan_id IN ({FROZEN_SQL})
                            AND (i.penalty_accrued_through IS NULL OR i.penalty_accrued_through < %(d)s)""",
                    {"d": d})
        clock = cur.rowcount
        cur.execute("""
            WITH od AS (SELECT i.loan_id, MIN(i.due_date) AS oldest FROM servicing_instalment i
                         WHERE i.status = 'overdue'
                           AND i.loan_id IN (SELECT loan_id FROM servicing_incidentloan) GROUP BY i.loan_id),
                 frozen AS (
                    SELECT od.loan_id, od.oldest,
                           SUM(GREATEST(0, LEAST(COALESCE(inc.window_end, %(d)s), %(d)s)
                                           - GREATEST(inc.window_start, od.oldest + 1) + 1)) AS days
                      FROM od JOIN servicing_incidentloan il ON il.loan_id = od.loan_id
                      JOIN servicing_incident inc ON inc.id = il.incident_id
                     GROUP BY od.loan_id, od.oldest)
            UPDATE servicing_loan l SET dpd = GREATEST(0, (%(d)s::date - f.oldest) - f.days)
              FROM frozen f
             WHERE l.id = f.loan_id AND l.status IN ('active', 'overdue')
               AND l.dpd <> GREATEST(0, (%(d)s::date - f.oldest) - f.days)""", {"d": d})
        return {"penalty_clock_held": clock, "dpd_adjusted": cur.rowcount}


@transaction.atomic
def close_incident(incident: Incident, *, back_on: date, user=None) -> dict:
    """The channel is back on `back_on`: close the window and schedule re-presentment that day
    (affected debits that failed; an unknown debit still waits for its result)."""
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if incident.status != IncidentStatus.OPEN:
        raise IncidentError(f"incident {incident.reference} is already closed")
    Incident.objects.filter(pk=incident.pk).update(
        status=IncidentStatus.CLOSED, window_end=back_on, represent_on=back_on, closed_at=timezone.now(),
        closed_by=user if getattr(user, "is_authenticated", False) else None)
    with connection.cursor() as cur:
        cur.execute("""
            WITH target AS (
                SELECT DISTINCT ON (il.loan_id) il.loan_id, i.id AS instalment_id, i.due_date
                  FROM servicing_incidentloan il
                  JOIN servicing_instalment i ON i.loan_id = il.loan_id
                   AND i.status IN ('pending', 'partially_paid', 'overdue') AND i.due_date <= %(d)s
                 WHERE il.incident_id = %(inc)s
                   AND NOT EXISTS (SELECT 1 FROM servicing_debit x WHERE x.loan_id = il.loan_id
                                    AND x.status IN ('planned', 'submitted', 'unknown'))
                 ORDER BY il.loan_id, i.due_date DESC, i.id DESC)
            INSERT INTO servicing_retrystate (instalment_id, loan_id, first_failed_on, failures, retries_used,
                                              next_retry_on, next_kind, status, last_category, updated_at)
            SELECT t.instalment_id, t.loan_id, %(start)s, 0, 0, %(d)s, 'represent', 'scheduled', 'channel_down', now()
              FROM target t
            ON CONFLICT (instalment_id) DO UPDATE
               SET next_retry_on = EXCLUDED.next_retry_on, next_kind = 'represent', status = 'scheduled',
                   updated_at = now()""", {"d": back_on, "inc": incident.pk, "start": incident.window_start})
        scheduled = cur.rowcount
    audit.record("incident.closed", incident, actor=user, back_on=back_on, represent=scheduled)
    return {"represent_scheduled": scheduled}


@transaction.atomic
def request_waiver(incident: Incident, *, user) -> Incident:
    updated = Incident.objects.filter(pk=incident.pk, waiver_approved_at__isnull=True).update(
        waiver_requested_by=user, waiver_requested_at=timezone.now())
    if not updated:
        raise IncidentError(f"incident {incident.reference}: the waiver was already approved")
    audit.record("incident.waiver_requested", incident, actor=user)
    incident.refresh_from_db()
    return incident


def _window_charges(incident: Incident) -> dict[int, dict[str, Decimal]]:
    """Penalty and compound accrued inside the window for the affected loans, per instalment."""
    end = incident.window_end or date.max
    with connection.cursor() as cur:
        cur.execute("""
            SELECT split_part(e.idempotency_key, ':', 2)::bigint AS inst_id, j.account, SUM(j.amount)
              FROM servicing_journalentry e JOIN servicing_journalline j ON j.entry_id = e.id
             WHERE e.kind = 'accrual' AND e.loan_id IN (SELECT loan_id FROM servicing_incidentloan
                                                         WHERE incident_id = %s)
               AND e.value_date >= %s AND e.value_date <= %s
               AND j.account IN ('penalty_receivable', 'compound_receivable')
             GROUP BY 1, 2""", [incident.pk, incident.window_start, end])
        out: dict[int, dict[str, Decimal]] = defaultdict(dict)
        for inst_id, account, amount in cur.fetchall():
            out[inst_id]["penalty" if account == "penalty_receivable" else "compound"] = amount
    return out


@transaction.atomic
def approve_waiver(incident: Incident, *, user, on_date: date) -> Decimal:
    """Waive (one approval for the lot) the penalty and compound charged because of the incident:
    DR waiver_expense, CR penalty/compound receivable, per loan; instalments' *_waived updated."""
    from servicing.services.payments import instalment_status, refresh_loan_status
    from servicing.services.settlement import settle_loans

    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if incident.waiver_requested_by_id is None:
        raise IncidentError("the waiver must be requested before it is approved")
    if incident.waiver_approved_at is not None:
        return incident.waived_amount
    if incident.waiver_requested_by_id == getattr(user, "pk", None):
        raise IncidentError("four eyes: the approver must not be the person who requested the waiver")
    charges = _window_charges(incident)
    by_loan: dict[int, list[Instalment]] = defaultdict(list)
    for inst in Instalment.objects.filter(pk__in=list(charges)).order_by("loan_id", "seq"):
        by_loan[inst.loan_id].append(inst)
    total, waived = ZERO, []
    for loan in Loan.objects.filter(pk__in=list(by_loan)).select_related("product"):
        per_component = {"penalty": ZERO, "compound": ZERO}
        for inst in by_loan[loan.pk]:
            for comp in ("penalty", "compound"):
                amount = min(charges[inst.pk].get(comp, ZERO), inst.outstanding(comp))
                if amount > ZERO:
                    setattr(inst, f"{comp}_waived", getattr(inst, f"{comp}_waived") + amount)
                    per_component[comp] += amount
            inst.status = instalment_status(inst, on_date)
            if inst.status == "paid" and inst.paid_on is None:
                inst.paid_on = on_date
            inst.save(update_fields=["penalty_waived", "compound_waived", "status", "paid_on"])
        loan_total = per_component["penalty"] + per_component["compound"]
        if loan_total == ZERO:
            continue
        post_entry(kind=EntryKind.WAIVER, key=f"waiver:incident:{incident.pk}:{loan.pk}", value_date=on_date,
                   loan=loan, memo=f"incident {incident.reference} waiver", user=user,
                   legs=[Leg(Account.WAIVER_EXPENSE, loan_total),
                         Leg(Account.PENALTY_RECEIVABLE, -per_component["penalty"]),
                         Leg(Account.COMPOUND_RECEIVABLE, -per_component["compound"])])
        IncidentLoan.objects.filter(incident=incident, loan=loan).update(waived_amount=loan_total)
        refresh_loan_status(loan, on_date)
        waived.append(loan.pk)
        total += loan_total
    settle_loans(waived, user=user)
    Incident.objects.filter(pk=incident.pk).update(waiver_approved_by=user, waiver_approved_at=timezone.now(),
                                                   waived_amount=total)
    audit.record("incident.waiver_approved", incident, actor=user, amount=total)
    return total


def incident_report(incident: Incident) -> dict:
    """Timeline, counts and amounts by bank and category, what was waived, what was recovered."""
    incident = Incident.objects.select_related("channel").get(pk=incident.pk)
    loan_ids = list(incident.affected.values_list("loan_id", flat=True))
    affected = Debit.objects.filter(pk__in=incident.affected.exclude(debit=None).values("debit_id"))
    by = (affected.values("mandate__bank_code", "category").annotate(n=Count("id"), amount=Sum("amount"))
          .order_by("mandate__bank_code", "category"))
    recovered = Debit.objects.filter(loan_id__in=loan_ids, status="succeeded",
                                     batch__business_date__gte=incident.window_start)
    if incident.represent_on:
        recovered = recovered.filter(batch__business_date__gte=incident.represent_on)
    rec = recovered.aggregate(n=Count("id"), amount=Sum("amount"))
    timeline = [("opened", incident.opened_at), ("window_start", incident.window_start),
                ("window_end", incident.window_end), ("closed", incident.closed_at),
                ("represent_on", incident.represent_on), ("waiver_requested", incident.waiver_requested_at),
                ("waiver_approved", incident.waiver_approved_at)]
    return {
        "reference": incident.reference, "channel": incident.channel.code, "title": incident.title,
        "status": incident.status, "automatic": incident.automatic,
        "timeline": [{"event": k, "at": v.isoformat()} for k, v in timeline if v],
        "affected_loans": len(loan_ids),
        "by_bank_and_category": [{"bank": r["mandate__bank_code"], "category": r["category"], "count": r["n"],
                                  "amount": format_amount(r["amount"])} for r in by],
        "waived": format_amount(incident.waived_amount),
        "recovered": {"count": rec["n"] or 0, "amount": format_amount(rec["amount"])},
    }
