"""Incidents (渠道事故): mass failures on a channel, the institution's fault.

For the affected loans and the incident window: penalty accrual and DPD stop counting (the business day's
accrual skips them, see services/business_day.py accrue_penalties, and the debits step keeps their
clock and DPD still), they are not debited while the incident is open (incident hold), penalty already
charged in the window is waived in bulk with one approval (four eyes), the affected debits are presented
again when the channel is back, each borrower gets one apology, and a report says what happened.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pghistory
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from servicing.domain.money import ZERO, format_amount
from servicing.models import Channel, Debit, DebitBatch, Incident, IncidentLoan, Loan
from servicing.models.debits import IncidentStatus
from servicing.models.ledger import EntryKind
from servicing.services import audit
from servicing.services.ledger import post_staged
from servicing.sql import define_trigger_settings, lock_loans, stage

from .batches import instalment_status_sql
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
        n = batch.debits.filter(category__in=INSTITUTION_SIDE, status__in=["failed", "unknown"]).count()
        total = batch.control_count or batch.debits.exclude(status="cancelled").count()
        if n < minimum or n * 100 <= pct * total:
            continue
        if Incident.objects.filter(batch=batch, automatic=True).exists():
            continue
        incident = open_incident(channel=batch.channel, window_start=batch.business_date, batch=batch,
                                 automatic=True,
                                 title=f"{batch.channel.code}: {n}/{total} debits failed institution-side "
                                       f"on {batch.business_date}")
        opened.append(incident.reference)
    return opened


# The loans whose debits failed institution-side (channel_down, technical, unknown), each with its latest such
# debit: of one batch (detected), or on the channel since the window's start (opened by hand)
AFFECTED_SQL = """
    INSERT INTO servicing_incidentloan (incident_id, loan_id, debit_id, waived_amount)
    SELECT DISTINCT ON (d.loan_id) %(inc)s, d.loan_id, d.id, 0
      FROM servicing_debit d JOIN servicing_debitbatch b ON b.id = d.batch_id
     WHERE {where} AND d.category = ANY(%(categories)s) AND d.status IN ('failed', 'unknown')
     ORDER BY d.loan_id, d.id DESC
    ON CONFLICT (incident_id, loan_id) DO NOTHING
"""


@transaction.atomic
def open_incident(*, channel: Channel, window_start: date, title: str, user=None, batch: DebitBatch | None = None,
                  automatic: bool = False, debits: list[Debit] | None = None,
                  loans: list[Loan] | None = None) -> Incident:
    """Open an incident (automatically or by hand) and attach the affected loans, each borrower told once.

    Without a list, the affected loans are those whose debits failed institution-side: in `batch` when given,
    else on the channel since `window_start`.
    """
    n = Incident.objects.filter(opened_at__date=timezone.localdate()).count() + 1
    incident = Incident.objects.create(
        reference=f"INC{window_start:%Y%m%d}-{channel.code}-{n}"[:40], channel=channel, batch=batch,
        automatic=automatic, title=title[:200], window_start=window_start,
        opened_by=user if getattr(user, "is_authenticated", False) else None)
    if debits is None and loans is None:
        where = "d.batch_id = %(batch)s" if batch else "b.channel_id = %(channel)s AND b.business_date >= %(start)s"
        with connection.cursor() as cur:
            cur.execute(AFFECTED_SQL.format(where=where), {
                "inc": incident.pk, "batch": getattr(batch, "pk", None), "channel": channel.pk,
                "start": window_start, "categories": list(INSTITUTION_SIDE)})
        _apologise(incident)
    else:
        add_affected(incident, debits=debits or [], loans=loans or [])
    audit.record("incident.opened", incident, actor=user, automatic=automatic, channel=channel.code,
                 loans=incident.affected.count())
    return incident


def add_affected(incident: Incident, *, debits: list[Debit] = (), loans: list[Loan] = ()) -> int:
    """Attach these loans to the incident and apologise to each borrower once."""
    rows = {d.loan_id: IncidentLoan(incident=incident, loan_id=d.loan_id, debit=d) for d in debits}
    for loan in loans:
        rows.setdefault(loan.pk, IncidentLoan(incident=incident, loan_id=loan.pk))
    created = IncidentLoan.objects.bulk_create(rows.values(), ignore_conflicts=True)
    _apologise(incident, list(rows))
    return len(created)


APOLOGY_BLOCK = 5000  # loans whose apologies are built and queued at a time: memory flat in the outage's size


def _apologise(incident: Incident, loan_ids: list[int] | None = None) -> None:
    """incident_apology to the borrower of each affected loan (of `loan_ids`, default all), about the loan's own
    IncidentLoan row: its dedupe key is per incident *and* loan (about the incident itself, every borrower after
    the first shared the first one's key and was never told), so telling again tells nobody twice. In blocks,
    each through notify_many (one COPY into the outbox for a block of an outage's thousands)."""
    from notices.services.events import _lang

    from .bulk_notices import notify_many
    from .failures import pay_url

    affected = IncidentLoan.objects.filter(incident=incident)
    if loan_ids is not None:
        affected = affected.filter(loan_id__in=loan_ids)
    ids = list(affected.order_by("id").values_list("id", flat=True))
    since, bank = incident.window_start.isoformat(), incident.channel.name
    for i in range(0, len(ids), APOLOGY_BLOCK):
        items = []
        for il in (IncidentLoan.objects.filter(pk__in=ids[i:i + APOLOGY_BLOCK])
                   .select_related("loan__borrower", "loan__product").order_by("id")):
            url = pay_url(il.loan)
            # in the borrower's language, as the template around it (notices.defaults)
            items.append((il.loan, il, incident.window_start, {
                "incident_summary": f"since {since} the {bank} system was down and your automatic debit could not "
                                    f"be made; no penalty is charged and your credit record is not affected"
                if _lang(il.loan) == "en" else
                f"{since} 起{bank}系统故障，代扣未能正常执行，期间不计罚息、不影响征信",
                "what_to_do": f"Nothing to do: we will debit again when the channel is back, or pay yourself at {url}"
                if _lang(il.loan) == "en" else f"无需操作，渠道恢复后我们将重新扣款；您也可以通过 {url} 主动还款",
                "pay_url": url,
            }))
        notify_many("incident_apology", items)


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
        return {"penalty_clock_held": clock,
                "dpd_adjusted": _frozen_dpd(cur, d, "SELECT loan_id FROM servicing_incidentloan")}


def _frozen_dpd(cur, d: date, loans: str) -> int:
    """DPD of the overdue `loans` (a subquery of loan ids) as of `d`, leaving out the days inside their incidents'
    windows; returns the loans whose DPD changed."""
    cur.execute(f"""
        WITH od AS (SELECT i.loan_id, MIN(i.due_date) AS oldest FROM servicing_instalment i
                     WHERE i.status = 'overdue' AND i.loan_id IN ({loans}) GROUP BY i.loan_id),
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
    return cur.rowcount


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


# Per instalment of the incident's loans: the penalty and compound its accruals charged inside the window, as far as
# still owed (a payment may have taken some); the waiver's entry is per loan (waiver:incident:<id>:<loan>).
WAIVABLE_SQL = """
    WITH charged AS (
        SELECT split_part(e.idempotency_key, ':', 2)::bigint AS id,
               COALESCE(SUM(j.amount) FILTER (WHERE j.account = 'penalty_receivable'), 0) AS pen,
               COALESCE(SUM(j.amount) FILTER (WHERE j.account = 'compound_receivable'), 0) AS cmp
          FROM servicing_journalentry e JOIN servicing_journalline j ON j.entry_id = e.id
         WHERE e.kind = 'accrual'
           AND e.loan_id IN (SELECT loan_id FROM servicing_incidentloan WHERE incident_id = %(inc)s)
           AND e.value_date BETWEEN %(start)s AND %(end)s
           AND j.account IN ('penalty_receivable', 'compound_receivable')
         GROUP BY 1)
    SELECT i.id, i.loan_id,
           GREATEST(0, LEAST(c.pen, i.penalty_accrued - i.penalty_paid - i.penalty_waived)) AS pen,
           GREATEST(0, LEAST(c.cmp, i.compound_accrued - i.compound_paid - i.compound_waived)) AS cmp
      FROM charged c JOIN servicing_instalment i ON i.id = c.id
"""


@transaction.atomic
def approve_waiver(incident: Incident, *, user, on_date: date) -> Decimal:
    """Waive (one approval for the lot, four eyes) the penalty and compound charged because of the incident:
    one entry per loan (DR waiver_expense, CR penalty/compound receivable), the instalments' *_waived, DPD and
    status; loans left owing nothing are settled. Set-based: an outage's thousands of loans in a few statements."""
    from servicing.services.settlement import settle_loans

    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if incident.waiver_requested_by_id is None:
        raise IncidentError("the waiver must be requested before it is approved")
    if incident.waiver_approved_at is not None:
        return incident.waived_amount
    if incident.waiver_requested_by_id == getattr(user, "pk", None):
        raise IncidentError("four eyes: the approver must not be the person who requested the waiver")
    p = {"inc": incident.pk, "start": incident.window_start, "end": incident.window_end or date.max, "d": on_date}
    with pghistory.context(incident=incident.reference, waiver_approved_by=getattr(user, "pk", None)), \
            connection.cursor() as cur:
        define_trigger_settings(cur)  # the instalments' history triggers, per row (see settlement.settle_loans)
        lock_loans("SELECT loan_id FROM servicing_incidentloan WHERE incident_id = %(inc)s", p)
        stage(f"SELECT * FROM ({WAIVABLE_SQL}) w WHERE w.pen > 0 OR w.cmp > 0", p, "_incident_waiver")
        cur.execute(f"""
            UPDATE servicing_instalment i
               SET penalty_waived = i.penalty_waived + w.pen, compound_waived = i.compound_waived + w.cmp,
                   {instalment_status_sql(paid_now="0", waived_now="w.pen + w.cmp", as_of="%(d)s")}
              FROM _incident_waiver w WHERE i.id = w.id""", p)
        stage(f"""SELECT loan_id, %(d)s::date AS value_date, 'waiver:incident:{incident.pk}:' || loan_id AS key,
                         SUM(pen) AS pen, SUM(cmp) AS cmp, SUM(pen + cmp) AS total
                    FROM _incident_waiver GROUP BY loan_id""", p, "_incident_waiver_loans")
        post_staged("_incident_waiver_loans", EntryKind.WAIVER, f"incident {incident.reference} waiver",
                    "('waiver_expense', t.total), ('penalty_receivable', -t.pen), ('compound_receivable', -t.cmp)",
                    user=user)
        cur.execute("""UPDATE servicing_incidentloan il SET waived_amount = t.total FROM _incident_waiver_loans t
                        WHERE il.incident_id = %(inc)s AND il.loan_id = t.loan_id""", p)
        # no overdue instalment left: cured; otherwise DPD from the oldest still overdue, the window's days left out
        cur.execute("""UPDATE servicing_loan l SET dpd = 0, status = 'active'
                         FROM _incident_waiver_loans t
                        WHERE l.id = t.loan_id AND l.status = 'overdue'
                          AND NOT EXISTS (SELECT 1 FROM servicing_instalment i
                                           WHERE i.loan_id = l.id AND i.status = 'overdue')""")
        _frozen_dpd(cur, on_date, "SELECT loan_id FROM _incident_waiver_loans")
        cur.execute("SELECT loan_id, total FROM _incident_waiver_loans ORDER BY loan_id")
        waived = cur.fetchall()
    total = sum((amount for _, amount in waived), ZERO)
    settle_loans([loan_id for loan_id, _ in waived], user=user)
    Incident.objects.filter(pk=incident.pk).update(waiver_approved_by=user, waiver_approved_at=timezone.now(),
                                                   waived_amount=total)
    audit.record("incident.waiver_approved", incident, actor=user, amount=total, loans=len(waived))
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
