from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0013_real_world_events"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="read_receipt_through",
            field=models.BigIntegerField(default=0, editable=False),
        ),
    ]
