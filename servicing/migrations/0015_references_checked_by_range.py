"""The statement-level reference checks (servicing.references) walk the parent's key range once instead of probing
it per key: the functions are replaced with the new text (CREATE OR REPLACE; the triggers are unchanged)."""

from django.db import migrations

from servicing import references as refs


class Migration(migrations.Migration):

    dependencies = [
        ('servicing', '0014_debit_answer_references'),
    ]

    operations = [
        migrations.RunSQL(refs.FUNCTIONS_SQL, migrations.RunSQL.noop),
    ]
