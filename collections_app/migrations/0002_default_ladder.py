from django.db import migrations

LADDER = (
    (1, "初步提醒", 1, False, ["sms", "in_app"], ["sms", "in_app"], 7, False),
    (2, "温馨提醒", 4, True, ["sms", "call", "hardship_offer"], ["sms"], 7, False),
    (3, "升级催收", 16, False, ["call", "email", "letter", "supervisor_review"], ["sms", "letter"], 14, False),
    (4, "法律程序", 61, False, ["legal_notice", "lawyer_referral"], ["letter"], 30, True),
)


def seed(apps, schema_editor):
    StrategyStage = apps.get_model("collections_app", "StrategyStage")
    for no, name, entry, after_grace, actions, channels, cadence, approval in LADDER:
        StrategyStage.objects.get_or_create(strategy="default", stage_no=no, defaults={
            "name": name, "entry_dpd": entry, "after_grace": after_grace, "actions": actions,
            "message_channels": channels, "cadence_days": cadence, "requires_approval": approval})


class Migration(migrations.Migration):
    dependencies = [("collections_app", "0001_initial")]
    operations = [
        migrations.RunPython(seed, migrations.RunPython.noop),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS caseevent_kind_date_idx ON collections_app_caseevent (kind, business_date)",
            "DROP INDEX IF EXISTS caseevent_kind_date_idx"),
    ]
