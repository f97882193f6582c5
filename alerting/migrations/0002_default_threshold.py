from django.db import migrations


def create_default_row(apps, schema_editor):
    """Every field empty: the default row follows the ALERT_QUEUE_* variables until edited."""
    apps.get_model("alerting", "Threshold").objects.get_or_create(queue="")


class Migration(migrations.Migration):
    dependencies = [("alerting", "0001_initial")]
    operations = [migrations.RunPython(create_default_row, migrations.RunPython.noop)]
