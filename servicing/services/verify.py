"""verify_books: every ledger invariant we can state, checked set-based from the outside.

The database already refuses unbalanced entries, negative paid amounts and overpaid components; this
proves that the derived figures (instalments, loans, payments) agree with the journal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection

RECEIVABLES_VS_INSTALMENTS = """
WITH ledger AS (
    SELECT loan_id,
           SUM(amount) FILTER (WHERE account = 'principal_receivable') AS principal,
           SUM(amount) FILTER (WHERE account = 'interest_receivable') AS interest,
           SUM(amount) FILTER (WHERE account = 'fee_receivable') AS fee,
           SUM(amount) FILTER (WHERE account = 'penalty_receivable') AS penalty,
           SUM(amount) FILTER (WHERE account = 'compound_receivable') AS compound,
           -SUM(amount) FILTER (WHERE account = 'credit_balance') AS credit
      FROM servicing_journalline WHERE loan_id IS NOT NULL GROUP BY loan_id
), sched AS (
    SELECT loan_id,
           SUM(principal_due - principal_paid - principal_waived) AS principal,
           SUM(CASE WHEN billed THEN interest_due - interest_paid - interest_waived ELSE 0 END) AS interest,
           SUM(CASE WHEN billed THEN fee_due - fee_paid - fee_waived ELSE 0 END) AS fee,
           SUM(penalty_accrued - penalty_paid - penalty_waived) AS penalty,
           SUM(compound_accrued - compound_paid - compound_waived) AS compound
      FROM servicing_instalment WHERE status <> 'superseded' GROUP BY loan_id
)
SELECT l.contract_no, comp.name, comp.ledger, comp.schedule
  FROM servicing_loan l
  LEFT JOIN ledger g ON g.loan_id = l.id
  LEFT JOIN sched s ON s.loan_id = l.id
 CROSS JOIN LATERAL (VALUES
        ('principal', COALESCE(g.principal, 0), COALESCE(s.principal, 0)),
        ('interest', COALESCE(g.interest, 0), COALESCE(s.interest, 0)),
        ('fee', COALESCE(g.fee, 0), COALESCE(s.fee, 0)),
        ('penalty', COALESCE(g.penalty, 0), COALESCE(s.penalty, 0)),
        ('compound', COALESCE(g.compound, 0), COALESCE(s.compound, 0)),
        ('credit_balance', COALESCE(g.credit, 0), l.credit_balance)
       ) AS comp(name, ledger, schedule)
 WHERE comp.ledger <> comp.schedule
 LIMIT 50
"""

CHECKS: list[tuple[str, str, str]] = [
    ("entries_balance", "every journal entry's lines sum to zero and it has at least two lines", """
        SELECT entry_id, SUM(amount), COUNT(*) FROM servicing_journalline GROUP BY entry_id
        HAVING SUM(amount) <> 0 OR COUNT(*) < 2 LIMIT 50"""),
    ("trial_balance", "all journal lines together sum to zero", """
        SELECT SUM(amount) FROM servicing_journalline HAVING SUM(amount) <> 0"""),
    ("entries_have_lines", "no journal entry without lines", """
        SELECT e.id FROM servicing_journalentry e
         WHERE NOT EXISTS (SELECT 1 FROM servicing_journalline l WHERE l.entry_id = e.id) LIMIT 50"""),
    ("receivables_match_instalments",
     "per loan, receivable balances in the journal equal the instalments' unpaid figures "
     "and the credit balance equals the loan's", RECEIVABLES_VS_INSTALMENTS),
    ("no_negative_balances", "no loan's receivable or credit balance is negative in the journal", """
        SELECT l.contract_no, j.account, SUM(j.amount) FROM servicing_journalline j
          JOIN servicing_loan l ON l.id = j.loan_id
         WHERE j.account IN ('principal_receivable', 'interest_receivable', 'fee_receivable',
                             'penalty_receivable', 'compound_receivable')
         GROUP BY l.contract_no, j.account HAVING SUM(j.amount) < 0
        UNION ALL
        SELECT l.contract_no, j.account, -SUM(j.amount) FROM servicing_journalline j
          JOIN servicing_loan l ON l.id = j.loan_id
         WHERE j.account IN ('credit_balance', 'refund_payable')
         GROUP BY l.contract_no, j.account HAVING SUM(j.amount) > 0 LIMIT 50"""),
    ("schedule_principal_equals_loan", "each loan's live schedule repays exactly its principal", """
        SELECT l.contract_no, l.principal, SUM(i.principal_due) FROM servicing_loan l
          JOIN servicing_instalment i ON i.loan_id = l.id AND i.status <> 'superseded'
         GROUP BY l.id HAVING SUM(i.principal_due) <> l.principal LIMIT 50"""),
    ("settled_loans_owe_nothing", "settled loans have nothing receivable, no credit balance, no open instalment", """
        SELECT l.contract_no FROM servicing_loan l
         WHERE l.status = 'settled' AND (l.credit_balance <> 0
           OR EXISTS (SELECT 1 FROM servicing_instalment i WHERE i.loan_id = l.id
                       AND i.status IN ('pending', 'partially_paid', 'overdue'))
           OR EXISTS (SELECT 1 FROM servicing_journalline j WHERE j.loan_id = l.id
                       AND j.account IN ('principal_receivable', 'interest_receivable', 'fee_receivable',
                                         'penalty_receivable', 'compound_receivable')
                       GROUP BY j.account HAVING SUM(j.amount) <> 0)) LIMIT 50"""),
    ("written_off_loans_owe_nothing", "written-off loans have nothing receivable left in the journal", """
        SELECT l.contract_no, j.account, SUM(j.amount) FROM servicing_loan l
          JOIN servicing_journalline j ON j.loan_id = l.id
         WHERE l.status = 'written_off'
           AND j.account IN ('principal_receivable', 'interest_receivable', 'fee_receivable',
                             'penalty_receivable', 'compound_receivable', 'credit_balance')
         GROUP BY l.contract_no, j.account HAVING SUM(j.amount) <> 0 LIMIT 50"""),
    ("paid_status_matches_amounts", "an instalment is 'paid' exactly when nothing of it is outstanding", """
        SELECT l.contract_no, i.seq, i.status FROM servicing_instalment i JOIN servicing_loan l ON l.id = i.loan_id
         WHERE i.status <> 'superseded' AND i.billed AND
               ((i.status = 'paid') <> (i.principal_due + i.interest_due + i.fee_due + i.penalty_accrued
                 + i.compound_accrued - i.principal_paid - i.interest_paid - i.fee_paid - i.penalty_paid
                 - i.compound_paid - i.principal_waived - i.interest_waived - i.fee_waived - i.penalty_waived
                 - i.compound_waived = 0)) LIMIT 50"""),
    ("payments_split", "each payment = applied + credited, and its allocations sum to the applied part", """
        SELECT p.reference, p.amount, p.applied_amount, p.credited_amount,
               (SELECT COALESCE(SUM(a.amount), 0) FROM servicing_allocation a WHERE a.payment_id = p.id) AS allocated
          FROM servicing_payment p
         WHERE p.amount <> p.applied_amount + p.credited_amount
            OR p.applied_amount <> (SELECT COALESCE(SUM(a.amount), 0) FROM servicing_allocation a
                                     WHERE a.payment_id = p.id)
         LIMIT 50"""),
    ("payments_cleared", "each payment entry debits the clearing accounts with the full amount of its payments, "
                         "and an entry shared by several payments holds one payment per loan", """
        WITH p AS (SELECT entry_id, SUM(amount) AS paid, COUNT(*) AS payments, COUNT(DISTINCT loan_id) AS loans
                     FROM servicing_payment GROUP BY entry_id),
             c AS (SELECT entry_id, SUM(amount) AS cleared FROM servicing_journalline
                    WHERE account LIKE 'clearing_%%' GROUP BY entry_id)
        SELECT p.entry_id, p.paid, COALESCE(c.cleared, 0), p.payments, p.loans
          FROM p LEFT JOIN c ON c.entry_id = p.entry_id
         WHERE p.paid <> COALESCE(c.cleared, 0) OR p.payments <> p.loans
         LIMIT 50"""),
    ("allocations_match_paid", "per instalment, allocations (of payments not reversed) sum to what it records as paid", """
        WITH a AS (SELECT a.instalment_id, SUM(a.principal) AS principal, SUM(a.interest) AS interest,
                          SUM(a.fee) AS fee, SUM(a.penalty) AS penalty, SUM(a.compound) AS compound
                     FROM servicing_allocation a
                     LEFT JOIN servicing_payment p ON p.id = a.payment_id
                    WHERE p.reversed IS NOT TRUE  -- a reversed payment's allocations were taken back
                    GROUP BY a.instalment_id)
        SELECT l.contract_no, i.seq, comp.name, comp.paid, comp.allocated
          FROM servicing_instalment i JOIN servicing_loan l ON l.id = i.loan_id
          LEFT JOIN a ON a.instalment_id = i.id
         CROSS JOIN LATERAL (VALUES ('principal', i.principal_paid, COALESCE(a.principal, 0)),
                                    ('interest', i.interest_paid, COALESCE(a.interest, 0)),
                                    ('fee', i.fee_paid, COALESCE(a.fee, 0)),
                                    ('penalty', i.penalty_paid, COALESCE(a.penalty, 0)),
                                    ('compound', i.compound_paid, COALESCE(a.compound, 0))) AS comp(name, paid, allocated)
         WHERE comp.paid <> comp.allocated LIMIT 50"""),
]


@dataclass
class CheckResult:
    name: str
    description: str
    ok: bool
    examples: list = field(default_factory=list)


def verify_books() -> list[CheckResult]:
    results = []
    with connection.cursor() as cur:
        for name, description, sql in CHECKS:
            cur.execute(sql)
            rows = cur.fetchall()
            results.append(CheckResult(name, description, not rows,
                                       [[str(v) for v in row] for row in rows[:10]]))
    return results
