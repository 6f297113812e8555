"""The content type of IdempotencyKey follows the model to whatsnap, so staff keep the admin
permissions they were given for it (a fresh database has no such row yet: nothing to do)."""
from django.db import migrations


def relabel(apps, schema_editor, *, source: str, target: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    if ContentType.objects.filter(app_label=target, model="idempotencykey").exists():
        return  # already created by post_migrate: the old row stays for remove_stale_contenttypes
    ContentType.objects.filter(app_label=source, model="idempotencykey").update(app_label=target)


class Migration(migrations.Migration):
    dependencies = [("hooks", "0005_idempotencykey_to_whatsnap"), ("contenttypes", "0002_remove_content_type_name")]
    operations = [
        migrations.RunPython(
            lambda apps, editor: relabel(apps, editor, source="hooks", target="whatsnap"),
            lambda apps, editor: relabel(apps, editor, source="whatsnap", target="hooks"),
        )
    ]
