"""Outgoing webhooks gain the event `account.status` (an account alert raised or cleared)."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("hooks", "0006_idempotencykey_content_type"),
    ]

    operations = [
        migrations.AlterField(
            model_name="webhookdelivery",
            name="event",
            field=models.CharField(
                choices=[
                    ("message.received", "Message received"),
                    ("message.status", "Message status changed"),
                    ("contact.created", "Contact created"),
                    ("conversation.assigned", "Conversation assigned"),
                    ("account.status", "Account alert raised or cleared"),
                ],
                max_length=40,
            ),
        ),
    ]
