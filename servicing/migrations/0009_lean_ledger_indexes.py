"""Ledger indexes a million-payment import no longer pays for: the account index holds only the accounts that
are not in nearly every entry, and the "reversed at most once" rule indexes only the entries that reverse one."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('servicing', '0008_bulk_references'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='journalline',
            name='line_account_idx',
        ),
        migrations.AlterField(
            model_name='journalentry',
            name='reverses',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='reversed_by', to='servicing.journalentry'),
        ),
        migrations.AddIndex(
            model_name='journalline',
            index=models.Index(condition=models.Q(('account__in', ['clearing_bank', 'principal_receivable', 'interest_receivable', 'interest_income']), _negated=True), fields=['account'], name='line_rare_account_idx'),
        ),
        migrations.AddConstraint(
            model_name='journalentry',
            constraint=models.UniqueConstraint(condition=models.Q(('reverses__isnull', False)), fields=('reverses',), name='entry_reversed_once'),
        ),
    ]
