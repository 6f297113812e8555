"""Canned responses become message templates (same table rows, renamed: shortcut -> name as
well, text -> body; nothing is lost), and scheduled replies (issue 18, points 4 and 5)."""
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def names_from_shortcuts(apps, schema_editor):
    """A canned response had only a shortcut: it becomes the template's name too (unique per
    location already, so the new unique name holds)."""
    MessageTemplate = apps.get_model("conversations", "MessageTemplate")
    for template in MessageTemplate.objects.filter(name="").iterator():
        template.name = template.shortcut[:100] or f"Template {template.pk}"
        template.save(update_fields=["name"])


def shortcuts_back(apps, schema_editor):
    """Going back: a template without a shortcut gets one from its id (canned responses need one)."""
    MessageTemplate = apps.get_model("conversations", "MessageTemplate")
    for template in MessageTemplate.objects.filter(shortcut="").iterator():
        template.shortcut = f"template-{template.pk}"
        template.save(update_fields=["shortcut"])


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0015_message_provider_id_core"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="cannedresponse", name="uniq_canned_shortcut"),
        migrations.RenameModel(old_name="CannedResponse", new_name="MessageTemplate"),
        migrations.RenameField(model_name="messagetemplate", old_name="text", new_name="body"),
        migrations.AddField(model_name="messagetemplate", name="name", field=models.CharField(default="", max_length=100), preserve_default=False),
        migrations.RunPython(names_from_shortcuts, shortcuts_back),
        migrations.AlterField(
            model_name="messagetemplate", name="body",
            field=models.TextField(help_text="The text; merge fields like {{first_name|there}} are filled in for each contact"),
        ),
        migrations.AlterField(
            model_name="messagetemplate", name="shortcut",
            field=models.SlugField(blank=True, help_text="Type /shortcut in the composer to find it (optional)", max_length=40),
        ),
        migrations.AlterField(
            model_name="messagetemplate", name="location",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="message_templates", to="accounts.location"),
        ),
        migrations.AddField(
            model_name="messagetemplate", name="created_by",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(model_name="messagetemplate", name="created_at", field=models.DateTimeField(default=django.utils.timezone.now)),
        migrations.AddField(model_name="messagetemplate", name="updated_at", field=models.DateTimeField(default=django.utils.timezone.now)),
        migrations.AlterModelOptions(name="messagetemplate", options={"ordering": ["name", "id"]}),
        migrations.AddConstraint(
            model_name="messagetemplate",
            constraint=models.UniqueConstraint(fields=("location", "name"), name="uniq_template_name"),
        ),
        migrations.AddConstraint(
            model_name="messagetemplate",
            constraint=models.UniqueConstraint(condition=models.Q(("shortcut", ""), _negated=True), fields=("location", "shortcut"),
                                               name="uniq_template_shortcut"),
        ),
        migrations.CreateModel(
            name="ScheduledMessage",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("text", models.TextField(help_text="Merge fields are filled in when it leaves")),
                ("send_at", models.DateTimeField()),
                ("at_business_hours", models.BooleanField(default=False, help_text="chosen as 'at the next business hours'")),
                ("status", models.CharField(choices=[("pending", "Scheduled"), ("sent", "Sent"), ("cancelled", "Cancelled"), ("failed", "Not sent")],
                                            default="pending", max_length=10)),
                ("error", models.CharField(blank=True, max_length=300)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("account", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.account")),
                ("conversation", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="scheduled_messages",
                                                   to="conversations.conversation")),
                ("created_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+",
                                                 to=settings.AUTH_USER_MODEL)),
                ("location", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.location")),
                ("message", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+",
                                              to="conversations.message")),
            ],
            options={
                "ordering": ["send_at", "id"],
                "indexes": [
                    models.Index(condition=models.Q(("status", "pending")), fields=["send_at"], name="scheduled_due"),
                    models.Index(fields=["conversation", "status"], name="scheduled_conversation"),
                ],
            },
        ),
    ]
