"""The minute schedule now runs every app's registered sweep (whatsnap.tasks.run_sweeps), and
one-off drains scheduled by earlier versions point at the send queue's own task."""
from django.db import migrations


def forward(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name="whatsnap-sweep-pending",
        defaults={"func": "whatsnap.tasks.run_sweeps", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )
    Schedule.objects.filter(func="conversations.tasks.drain_account").update(func="conversations.pacing.drain_account")


def backward(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name="whatsnap-sweep-pending").update(func="conversations.tasks.sweep_pending")
    Schedule.objects.filter(func="conversations.pacing.drain_account").update(func="conversations.tasks.drain_account")


class Migration(migrations.Migration):
    dependencies = [("conversations", "0011_conversation_opened_index")]
    operations = [migrations.RunPython(forward, backward)]
