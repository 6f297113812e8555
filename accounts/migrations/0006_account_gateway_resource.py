import secrets

from django.db import migrations, models

import accounts.models


def name_existing(apps, schema_editor):
    """Accounts connected before keep the gateway name they already use (their session lives
    under it), but a name claimed by two accounts stays with the oldest; the others get a new
    random name (they must scan again) -- the hijack this field exists to prevent."""
    Account = apps.get_model("accounts", "Account")
    taken = set()
    for account in Account.objects.order_by("id").iterator():
        legacy = ""
        if account.backend in ("evolution", "waha"):
            config = account.config or {}
            legacy = str(config.get("instance") or config.get("session") or f"whatsnap-{account.pk}")[:64]
        if legacy and legacy not in taken:
            account.gateway_resource, account.gateway_claimed_at = legacy, account.created_at
        else:
            account.gateway_resource, account.gateway_claimed_at = f"whatsnap-{secrets.token_hex(8)}", None
        taken.add(account.gateway_resource)
        config = {k: v for k, v in (account.config or {}).items() if k not in ("instance", "session")}
        account.config = config
        account.save(update_fields=["gateway_resource", "gateway_claimed_at", "config"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_pacing_limits")]

    operations = [
        migrations.AddField(
            model_name="account", name="gateway_resource",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="account", name="gateway_claimed_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(name_existing, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="account", name="gateway_resource",
            field=models.CharField(default=accounts.models.new_gateway_resource, editable=False, max_length=64),
        ),
        migrations.AddConstraint(
            model_name="account",
            constraint=models.UniqueConstraint(fields=("gateway_resource",), name="uniq_account_gateway_resource"),
        ),
    ]
