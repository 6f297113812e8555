"""The hooks sweep is registered with whatsnap.tasks (HooksConfig.ready) and run by the one
minute schedule, whatsnap.tasks.run_sweeps (conversations 0012): its own schedule goes."""
from django.db import migrations


def drop_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="whatsnap-hooks-sweep").delete()


def create_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="whatsnap-hooks-sweep",
        defaults={"func": "hooks.tasks.sweep", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


class Migration(migrations.Migration):
    dependencies = [("hooks", "0003_delivery_plural"), ("conversations", "0012_one_minute_sweep")]
    operations = [migrations.RunPython(drop_schedule, create_schedule)]
