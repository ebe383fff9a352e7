"""A notice's borrower and loan are checked set-based per statement (servicing.references), not by per-row
foreign keys: a large import queues a receipt per payment on every channel."""

import django.db.models.deletion
from django.db import migrations, models

from servicing import references as refs

FORWARD = refs.child_sql("notices_notice", [("borrower_id", "servicing_borrower"), ("loan_id", "servicing_loan")]) + (
    refs.parent_sql("servicing_borrower", [("notices_notice", "borrower_id")], name="still_referenced_by_notices")
    + refs.parent_sql("servicing_loan", [("notices_notice", "loan_id")], name="still_referenced_by_notices"))
BACKWARD = (refs.drop_parent_sql("servicing_loan", name="still_referenced_by_notices")
            + refs.drop_parent_sql("servicing_borrower", name="still_referenced_by_notices")
            + refs.drop_child_sql("notices_notice"))


class Migration(migrations.Migration):

    dependencies = [
        ('notices', '0003_pre_due_warned_index'),
        ('servicing', '0008_bulk_references'),
    ]

    operations = [
        migrations.AlterField(
            model_name='notice',
            name='borrower',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='notices', to='servicing.borrower'),
        ),
        migrations.AlterField(
            model_name='notice',
            name='dedupe_key',
            field=models.CharField(max_length=200),
        ),
        migrations.AlterField(
            model_name='notice',
            name='loan',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='notices', to='servicing.loan'),
        ),
        migrations.AddConstraint(
            model_name='notice',
            constraint=models.UniqueConstraint(fields=('dedupe_key',), name='notice_dedupe_key_unique'),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
