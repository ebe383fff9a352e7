"""Seed the default Chinese and English wording for every event × channel (never overwrites edits)."""

from django.db import migrations


def seed(apps, schema_editor):
    from notices.defaults import default_templates

    NoticeTemplate = apps.get_model("notices", "NoticeTemplate")
    existing = set(NoticeTemplate.objects.values_list("event", "channel", "language"))
    NoticeTemplate.objects.bulk_create(
        [NoticeTemplate(**row) for row in default_templates()
         if (row["event"], row["channel"], row["language"]) not in existing])


class Migration(migrations.Migration):
    dependencies = [("notices", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
