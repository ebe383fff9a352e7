"""The references a result-file import writes by the hundred thousand are checked set-based per statement
(servicing.references) instead of by per-row foreign keys; indexes a composite index already covers go; an
instalment's history no longer records an update that only applies a payment (see Instalment).

Measured on 100k result rows (bench/import_results.py, 2 workers): the foreign-key checks were about a fifth
of the import, the instalment history rows about a sixth.
"""

import django.db.models.deletion
import pgtrigger.compiler
import pgtrigger.migrations
from django.conf import settings
from django.db import migrations, models

from servicing import references as refs

CHILDREN = {
    "servicing_journalentry": [("loan_id", "servicing_loan")],
    "servicing_journalline": [("entry_id", "servicing_journalentry"), ("loan_id", "servicing_loan")],
    "servicing_payment": [("loan_id", "servicing_loan"), ("entry_id", "servicing_journalentry")],
    "servicing_allocation": [("entry_id", "servicing_journalentry"), ("payment_id", "servicing_payment"),
                             ("instalment_id", "servicing_instalment")],
    "servicing_debitattempt": [("debit_id", "servicing_debit"), ("result_file_id", "servicing_resultfile")],
}
# journal entries refuse every delete already (journal_entry_append_only)
PARENTS = {
    "servicing_loan": [("servicing_journalentry", "loan_id"), ("servicing_journalline", "loan_id"),
                       ("servicing_payment", "loan_id")],
    "servicing_payment": [("servicing_allocation", "payment_id")],
    "servicing_instalment": [("servicing_allocation", "instalment_id")],
    "servicing_debit": [("servicing_debitattempt", "debit_id")],
    "servicing_resultfile": [("servicing_debitattempt", "result_file_id")],
}
FORWARD = refs.FUNCTIONS_SQL + "".join(refs.child_sql(t, r) for t, r in CHILDREN.items()) + "".join(
    refs.parent_sql(t, c) for t, c in PARENTS.items())
BACKWARD = ("".join(refs.drop_parent_sql(t) for t in PARENTS) + "".join(refs.drop_child_sql(t) for t in CHILDREN)
            + refs.DROP_FUNCTIONS_SQL)


class Migration(migrations.Migration):

    dependencies = [
        ('servicing', '0007_statement_level_triggers'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        pgtrigger.migrations.RemoveTrigger(
            model_name='instalment',
            name='update_update',
        ),
        migrations.AlterField(
            model_name='allocation',
            name='entry',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='allocations', to='servicing.journalentry'),
        ),
        migrations.AlterField(
            model_name='allocation',
            name='instalment',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='allocations', to='servicing.instalment'),
        ),
        migrations.AlterField(
            model_name='allocation',
            name='payment',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='allocations', to='servicing.payment'),
        ),
        migrations.AlterField(
            model_name='debitattempt',
            name='debit',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='attempts', to='servicing.debit'),
        ),
        migrations.AlterField(
            model_name='debitattempt',
            name='result_file',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='attempts', to='servicing.resultfile'),
        ),
        migrations.AlterField(
            model_name='instalment',
            name='loan',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='instalments', to='servicing.loan'),
        ),
        migrations.AlterField(
            model_name='journalentry',
            name='created_by',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='journalentry',
            name='idempotency_key',
            field=models.CharField(max_length=120),
        ),
        migrations.AlterField(
            model_name='journalentry',
            name='loan',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='journal_entries', to='servicing.loan'),
        ),
        migrations.AlterField(
            model_name='journalline',
            name='entry',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='lines', to='servicing.journalentry'),
        ),
        migrations.AlterField(
            model_name='journalline',
            name='loan',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='journal_lines', to='servicing.loan'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='created_by',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='payment',
            name='entry',
            field=models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='payment', to='servicing.journalentry'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='loan',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='payments', to='servicing.loan'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='reference',
            field=models.CharField(max_length=80),
        ),
        migrations.AddIndex(
            model_name='journalentry',
            index=models.Index(condition=models.Q(('created_by__isnull', False)), fields=['created_by'], name='entry_created_by_idx'),
        ),
        migrations.AddIndex(
            model_name='payment',
            index=models.Index(condition=models.Q(('created_by__isnull', False)), fields=['created_by'], name='payment_created_by_idx'),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='instalment',
            trigger=pgtrigger.compiler.Trigger(name='update_update', sql=pgtrigger.compiler.UpsertTriggerSql(condition="WHEN ((OLD.loan_id, OLD.seq, OLD.period_start, OLD.due_date, OLD.principal_due, OLD.interest_due, OLD.fee_due, OLD.penalty_accrued, OLD.compound_accrued, OLD.principal_waived, OLD.interest_waived, OLD.fee_waived, OLD.penalty_waived, OLD.compound_waived, OLD.billed, OLD.penalty_accrued_through) IS DISTINCT FROM (NEW.loan_id, NEW.seq, NEW.period_start, NEW.due_date, NEW.principal_due, NEW.interest_due, NEW.fee_due, NEW.penalty_accrued, NEW.compound_accrued, NEW.principal_waived, NEW.interest_waived, NEW.fee_waived, NEW.penalty_waived, NEW.compound_waived, NEW.billed, NEW.penalty_accrued_through) OR (OLD.status = 'superseded') IS DISTINCT FROM (NEW.status = 'superseded'))", func='INSERT INTO "servicing_instalmentevent" ("billed", "compound_accrued", "compound_paid", "compound_waived", "due_date", "fee_due", "fee_paid", "fee_waived", "id", "interest_due", "interest_paid", "interest_waived", "loan_id", "paid_on", "penalty_accrued", "penalty_accrued_through", "penalty_paid", "penalty_waived", "period_start", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "principal_due", "principal_paid", "principal_waived", "seq", "status") VALUES (NEW."billed", NEW."compound_accrued", NEW."compound_paid", NEW."compound_waived", NEW."due_date", NEW."fee_due", NEW."fee_paid", NEW."fee_waived", NEW."id", NEW."interest_due", NEW."interest_paid", NEW."interest_waived", NEW."loan_id", NEW."paid_on", NEW."penalty_accrued", NEW."penalty_accrued_through", NEW."penalty_paid", NEW."penalty_waived", NEW."period_start", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."principal_due", NEW."principal_paid", NEW."principal_waived", NEW."seq", NEW."status"); RETURN NULL;', hash='2694cca469dd255bcba7cc17a98f5bbdf6bedfdb', operation='UPDATE', pgid='pgtrigger_update_update_faa83', table='servicing_instalment', when='AFTER')),
        ),
        migrations.AddConstraint(
            model_name='journalentry',
            constraint=models.UniqueConstraint(fields=('idempotency_key',), name='entry_idempotency_key_unique'),
        ),
        migrations.AddConstraint(
            model_name='payment',
            constraint=models.UniqueConstraint(fields=('reference',), name='payment_reference_unique'),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
