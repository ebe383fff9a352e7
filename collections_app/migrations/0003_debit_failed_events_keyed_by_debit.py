"""A failed debit's timeline event was keyed on its answer row; the answer is now on the debit (servicing 0012),
so the key names the debit. Events already on a timeline are re-keyed so the day does not add them again."""

from django.db import migrations

REKEY_SQL = """
UPDATE collections_app_caseevent SET dedupe_key = 'debit_failed:debit:' || (data ->> 'debit')
 WHERE kind = 'debit_failed' AND dedupe_key NOT LIKE 'debit_failed:debit:%' AND data ? 'debit'
"""


class Migration(migrations.Migration):

    dependencies = [
        ('collections_app', '0002_default_ladder'),
    ]

    operations = [migrations.RunSQL(REKEY_SQL, migrations.RunSQL.noop)]
