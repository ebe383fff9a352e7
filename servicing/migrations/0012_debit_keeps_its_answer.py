"""A debit keeps the bank's answer on its own row (status word, action, day, file line); the answers table keeps
only those a later answer replaced (EarlierAnswer, the same table). Each debit's latest answer moves onto it."""

import django.db.models.deletion
from django.db import migrations, models

MOVE_LATEST_SQL = """
CREATE TEMP TABLE _latest ON COMMIT DROP AS
SELECT DISTINCT ON (debit_id) * FROM servicing_debitattempt ORDER BY debit_id, id DESC;
UPDATE servicing_debit d
   SET result_status = l.raw_status, result_code = l.raw_code, result_message = l.raw_message,
       result_action = l.action, result_on = l.business_date, result_file_id = l.result_file_id,
       result_line = l.line_no
  FROM _latest l WHERE d.id = l.debit_id;
DELETE FROM servicing_debitattempt a USING _latest l WHERE a.id = l.id;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('servicing', '0011_allocation_per_instalment'),
    ]

    operations = [
        migrations.AddField(
            model_name='debit',
            name='result_action',
            field=models.CharField(blank=True, db_default='', max_length=200, verbose_name='处理动作'),
        ),
        migrations.AddField(
            model_name='debit',
            name='result_file',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='answered_debits', to='servicing.resultfile'),
        ),
        migrations.AddField(
            model_name='debit',
            name='result_line',
            field=models.PositiveIntegerField(blank=True, null=True, verbose_name='回盘行号'),
        ),
        migrations.AddField(
            model_name='debit',
            name='result_on',
            field=models.DateField(blank=True, null=True, verbose_name='回执日'),
        ),
        migrations.AddField(
            model_name='debit',
            name='result_status',
            field=models.CharField(blank=True, db_default='', max_length=40, verbose_name='回执状态'),
        ),
        migrations.RunSQL(MOVE_LATEST_SQL, migrations.RunSQL.noop),
        migrations.AddConstraint(
            model_name='debit',
            constraint=models.UniqueConstraint(condition=models.Q(('result_file__isnull', False)), fields=('result_file', 'result_line'), name='debit_answer_once_per_file_line'),
        ),
        migrations.AlterModelTable(name='debitattempt', table='servicing_debitattempt'),
        migrations.RenameModel(old_name='DebitAttempt', new_name='EarlierAnswer'),
        migrations.AlterModelOptions(
            name='earlieranswer',
            options={'ordering': ['debit_id', 'id'], 'verbose_name': '此前回执', 'verbose_name_plural': '此前回执'},
        ),
        migrations.AlterField(
            model_name='earlieranswer',
            name='debit',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='earlier_answers', to='servicing.debit'),
        ),
        migrations.AlterField(
            model_name='earlieranswer',
            name='result_file',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='earlier_answers', to='servicing.resultfile'),
        ),
    ]
