"""mark_overdue reads `MIN(due_date)` of the instalments still pending or partially paid, then only the
range from there to the date (see business_day._earliest_due). instalment_open_due_idx also holds the
overdue instalments, which sit at its low end: the MIN would walk past all of them (≈94k heap checks at
1M loans). This index holds only the not-yet-overdue ones, so the MIN is one index entry."""

from django.db import migrations

SQL = """
CREATE INDEX IF NOT EXISTS instalment_pending_due_idx ON servicing_instalment (due_date)
    WHERE status IN ('pending', 'partially_paid');
"""
REVERSE = "DROP INDEX IF EXISTS instalment_pending_due_idx;"


class Migration(migrations.Migration):
    dependencies = [("servicing", "0004_business_day_indexes")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
