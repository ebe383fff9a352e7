"""A debit's references (batch, loan, mandate, instalment) checked once per statement, as the import's are
(servicing.references): a batch of a million debits ran four foreign-key probes per row, half of its build."""

import django.db.models.deletion
from django.db import migrations, models

from servicing import references as refs

CHILD = ("servicing_debit", [("batch_id", "servicing_debitbatch"), ("loan_id", "servicing_loan"),
                             ("mandate_id", "servicing_mandate"), ("instalment_id", "servicing_instalment")])
PARENTS = ["servicing_debitbatch", "servicing_loan", "servicing_mandate", "servicing_instalment"]
NAME = "still_referenced_by_debits"
FORWARD = refs.child_sql(*CHILD) + "".join(
    refs.parent_sql(parent, [("servicing_debit", column)], name=NAME)
    for column, parent in CHILD[1])
BACKWARD = "".join(refs.drop_parent_sql(parent, name=NAME) for parent in PARENTS) + refs.drop_child_sql(CHILD[0])


class Migration(migrations.Migration):

    dependencies = [
        ('servicing', '0009_lean_ledger_indexes'),
    ]

    operations = [
        migrations.AlterField(
            model_name='debit',
            name='batch',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='debits', to='servicing.debitbatch'),
        ),
        migrations.AlterField(
            model_name='debit',
            name='instalment',
            field=models.ForeignKey(db_constraint=False, db_index=False, help_text='触发扣款的期次（金额含此前全部逾期应还）', on_delete=django.db.models.deletion.PROTECT, related_name='debits', to='servicing.instalment'),
        ),
        migrations.AlterField(
            model_name='debit',
            name='loan',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='debits', to='servicing.loan'),
        ),
        migrations.AlterField(
            model_name='debit',
            name='mandate',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='debits', to='servicing.mandate'),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
