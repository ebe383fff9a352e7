"""Partial indexes the business day needs so each step reads only the day's rows (see bench/README.md)."""

from django.db import migrations

SQL = """
CREATE INDEX IF NOT EXISTS instalment_unbilled_due_idx ON servicing_instalment (due_date)
    WHERE NOT billed AND status <> 'superseded';
CREATE INDEX IF NOT EXISTS instalment_overdue_loan_idx ON servicing_instalment (loan_id, due_date)
    WHERE status = 'overdue';
CREATE INDEX IF NOT EXISTS instalment_paid_on_idx ON servicing_instalment (paid_on)
    WHERE paid_on IS NOT NULL;
CREATE INDEX IF NOT EXISTS instalment_open_loan_idx ON servicing_instalment (loan_id)
    WHERE status IN ('pending', 'partially_paid', 'overdue');
CREATE INDEX IF NOT EXISTS loan_credit_balance_idx ON servicing_loan (id) WHERE credit_balance > 0;
"""
REVERSE = """
DROP INDEX IF EXISTS instalment_unbilled_due_idx;
DROP INDEX IF EXISTS instalment_overdue_loan_idx;
DROP INDEX IF EXISTS instalment_paid_on_idx;
DROP INDEX IF EXISTS instalment_open_loan_idx;
DROP INDEX IF EXISTS loan_credit_balance_idx;
"""


class Migration(migrations.Migration):
    dependencies = [("servicing", "0003_debits")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
