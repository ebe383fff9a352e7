"""Small hooks the core services call so debits follow what happens to loans and mandates."""

from __future__ import annotations

from django.db import connection

from .batches import OUTSTANDING_SQL


def cancel_unsent_debits_of_mandate(mandate) -> int:
    """Mandate cancelled: debits not yet sent (planned) are cancelled."""
    with connection.cursor() as cur:
        cur.execute("UPDATE servicing_debit SET status = 'cancelled', updated_at = now() "
                    "WHERE loan_id = %s AND in_flight AND mandate_id = %s AND status = 'planned'", [mandate.loan_id, mandate.pk])
        return cur.rowcount


def after_payment(payment) -> int:
    """A payment was posted: a planned debit of the loan is cancelled when nothing is left due, or lowered
    to what is still due (a debit already submitted is left alone: if it also succeeds, the surplus goes
    to the credit balance)."""
    if payment.channel == "bank":
        return 0
    with connection.cursor() as cur:
        cur.execute(f"""
            WITH owed AS (
                SELECT d.id, (SELECT COALESCE(SUM({OUTSTANDING_SQL}), 0) FROM servicing_instalment i
                               WHERE i.loan_id = d.loan_id AND i.status IN ('pending', 'partially_paid', 'overdue')
                                 AND i.due_date <= d.due_date) - l.credit_balance AS amount
                  FROM servicing_debit d JOIN servicing_loan l ON l.id = d.loan_id
                 WHERE d.loan_id = %s AND d.status = 'planned')
            UPDATE servicing_debit d
               SET status = CASE WHEN o.amount <= 0 THEN 'cancelled' ELSE d.status END,
                   amount = CASE WHEN o.amount > 0 AND o.amount < d.amount THEN o.amount ELSE d.amount END,
                   updated_at = now()
              FROM owed o WHERE d.id = o.id AND (o.amount <= 0 OR o.amount < d.amount)
               -- again here, not only in owed: if an export marks it submitted meanwhile, this waits for the
               -- export's commit and then re-checks this condition on the debit as the export left it
               AND d.status = 'planned'""", [payment.loan_id])
        return cur.rowcount

