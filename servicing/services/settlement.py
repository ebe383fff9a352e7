"""Settlement (结清): a loan with nothing owed and nothing pending is marked settled, with its certificate and notice.

One path for one loan and for ten thousand: on the day a cohort's last instalment falls due, one bank result file
pays off the whole cohort. The checks are one query over the candidate ids (SETTLEMENT_CHECK_SQL, which also
explains to a person why a loan is not settled), the loans are marked in one UPDATE, their certificates written
in one INSERT and their notices queued in bulk (`notices.services.events.loans_settled`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

import pghistory
from django.db import connection, transaction

from servicing.domain.money import ZERO
from servicing.models import Loan
from servicing.models.ledger import RECEIVABLE_BY_COMPONENT, Account, EntryKind
from servicing.models.loans import LoanStatus
from servicing.sql import define_trigger_settings

from . import audit
from .ledger import Leg, post_entry

# Per candidate loan: what still blocks its settlement, the day it is settled on (the last value date of its
# payments or of a credit-balance application, else its disbursement), its credit balance and when its last payment
# came in (the settlement notice's cause, for the settlement-delay KPI). Every read is by the loan's own index.
SETTLEMENT_CHECK_SQL = """
SELECT l.id,
       EXISTS (SELECT 1 FROM servicing_instalment i WHERE i.loan_id = l.id
                  AND i.status NOT IN ('paid', 'superseded')) AS open_instalments,
       ARRAY(SELECT jl.account || ' is ' || SUM(jl.amount)::text FROM servicing_journalline jl
              WHERE jl.loan_id = l.id AND jl.account = ANY(%(receivable)s)
              GROUP BY jl.account HAVING SUM(jl.amount) <> 0 ORDER BY jl.account) AS receivable,
       EXISTS (SELECT 1 FROM servicing_debit d WHERE d.loan_id = l.id AND d.in_flight) AS debit_in_flight,
       EXISTS (SELECT 1 FROM servicing_reconciliationexception x WHERE x.loan_id = l.id
                  AND x.status = 'open') AS open_exception,
       GREATEST(COALESCE((SELECT MAX(p.value_date) FROM servicing_payment p WHERE p.loan_id = l.id), l.disbursed_on),
                (SELECT MAX(e.value_date) FROM servicing_journalentry e
                  WHERE e.loan_id = l.id AND e.kind = %(credit_application)s)) AS settled_on,
       l.credit_balance,
       (SELECT MAX(p.created_at) FROM servicing_payment p WHERE p.loan_id = l.id) AS last_payment_at
  FROM servicing_loan l
 WHERE l.id = ANY(%(ids)s::bigint[])
 ORDER BY l.id
"""


class Check(NamedTuple):
    """A row of SETTLEMENT_CHECK_SQL."""

    loan_id: int
    open_instalments: bool
    receivable: list[str]
    debit_in_flight: bool
    open_exception: bool
    settled_on: date
    credit_balance: Decimal
    last_payment_at: datetime | None

    def blockers(self) -> list[str]:
        return ((["instalments still owe money"] if self.open_instalments else []) + list(self.receivable)
                + (["a debit is in flight or its result is unknown"] if self.debit_in_flight else [])
                + (["a reconciliation exception is open"] if self.open_exception else []))


def _checks(loan_ids: list[int]) -> list[Check]:
    with connection.cursor() as cur:
        cur.execute(SETTLEMENT_CHECK_SQL, {"ids": loan_ids, "receivable": list(RECEIVABLE_BY_COMPONENT.values()),
                                           "credit_application": EntryKind.CREDIT_APPLICATION})
        return [Check(*row) for row in cur.fetchall()]


def settlement_blockers(loan: Loan) -> list[str]:
    """Why a loan is not settled yet; empty when it may be (结清 needs nothing owed and nothing pending)."""
    rows = _checks([loan.pk])
    return rows[0].blockers() if rows else ["no such loan"]


SETTLE_BLOCK = 5_000  # loans settled at a time (memory: their rows, certificates and notices)


@transaction.atomic
def settle_loans(loan_ids: Iterable[int], *, user=None) -> list[int]:
    """Settle every loan of `loan_ids` that owes nothing and has nothing pending; returns the ids settled now.

    A credit balance left on a settled loan becomes a refund to pay out. The loans are locked in id order
    first, so a payment racing for one of them waits (or makes it wait) and the checks see the final state.
    One transaction, in blocks of SETTLE_BLOCK loans.
    """
    ids = sorted(set(loan_ids))
    settled: list[int] = []
    # The loans' history triggers run per row: with a pghistory context and pgtrigger's settings defined, none
    # of them raises and catches an error to find one unset (a subtransaction per row, each scanning the
    # transaction's queue of deferred triggers: quadratic in a cohort, 1.7 s → 3.9 s per block of 5,000 loans)
    with pghistory.context(settlement="settle_loans"):
        with connection.cursor() as cur:
            define_trigger_settings(cur)
        for i in range(0, len(ids), SETTLE_BLOCK):
            settled += _settle_block(ids[i:i + SETTLE_BLOCK], user)
    return settled


def _settle_block(ids: list[int], user) -> list[int]:
    with connection.cursor() as cur:
        cur.execute("SELECT id FROM servicing_loan WHERE id = ANY(%s::bigint[]) "
                    "AND status NOT IN ('settled', 'written_off') ORDER BY id FOR UPDATE", [ids])
        open_ids = [r[0] for r in cur.fetchall()]
    ready = {c.loan_id: c for c in _checks(open_ids) if not c.blockers()}
    if not ready:
        return []
    loans = {loan.pk: loan for loan in Loan.objects.filter(pk__in=list(ready)).select_related("borrower", "product")}
    # a refund per loan that still holds a credit balance: rare (money taken twice), so one entry each
    for c in ready.values():
        if c.credit_balance > ZERO:
            post_entry(kind=EntryKind.REFUND, key=f"refund:{c.loan_id}", value_date=c.settled_on,
                       loan=loans[c.loan_id], memo="credit balance left at settlement, to refund",
                       legs=[Leg(Account.CREDIT_BALANCE, c.credit_balance),
                             Leg(Account.REFUND_PAYABLE, -c.credit_balance)])
    with connection.cursor() as cur:
        cur.execute("""UPDATE servicing_loan l SET status = 'settled', settled_on = v.settled_on, dpd = 0,
                              credit_balance = 0
                         FROM unnest(%s::bigint[], %s::date[]) AS v(id, settled_on)
                        WHERE l.id = v.id AND l.status NOT IN ('settled', 'written_off')
                    RETURNING l.id""", [list(ready), [c.settled_on for c in ready.values()]])
        settled = sorted(r[0] for r in cur.fetchall())
    for pk in settled:
        loan = loans[pk]
        loan.status, loan.settled_on, loan.dpd, loan.credit_balance = LoanStatus.SETTLED, ready[pk].settled_on, 0, ZERO
    audit.record_many("loan.settled", "servicing.loan", {pk: "" for pk in settled}, actor=user,
                      data={pk: {"settled_on": ready[pk].settled_on} for pk in settled})
    from notices.services import events

    events.loans_settled([loans[pk] for pk in settled], {pk: ready[pk].last_payment_at for pk in settled})
    return settled


def settle_if_paid(loan: Loan, *, user=None) -> bool:
    """settle_loans for one loan; the instance given is updated when it is settled."""
    if not settle_loans([loan.pk], user=user):
        return False
    loan.refresh_from_db(fields=["status", "settled_on", "dpd", "credit_balance"])
    return True
