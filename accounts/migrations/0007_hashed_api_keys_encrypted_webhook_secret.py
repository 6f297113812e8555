"""API keys are kept as a visible prefix + SHA-256 hash (the plaintext column is dropped), and
each account's webhook secret is encrypted at rest."""
import hashlib

from django.db import migrations, models

import accounts.models
import whatsnap.crypto

PREFIX, VISIBLE = "wsn_", 8  # as accounts.models at the time of this migration


def hash_keys(apps, schema_editor):
    ApiToken = apps.get_model("accounts", "ApiToken")
    for token in ApiToken.objects.all().iterator():
        key = token.key
        token.prefix = key[len(PREFIX):len(PREFIX) + VISIBLE] if key.startswith(PREFIX) else ""
        token.key_hash = hashlib.sha256(key.encode()).hexdigest()
        token.save(update_fields=["prefix", "key_hash"])


def encrypt_webhook_secrets(apps, schema_editor):
    # here the column is still a plain TextField, so the values read are the stored ones
    Account = apps.get_model("accounts", "Account")
    for pk, secret in Account.objects.values_list("pk", "webhook_secret").iterator():
        Account.objects.filter(pk=pk).update(webhook_secret=whatsnap.crypto.encrypt(secret))


def decrypt_webhook_secrets(apps, schema_editor):
    Account = apps.get_model("accounts", "Account")
    for pk, secret in Account.objects.values_list("pk", "webhook_secret").iterator():
        Account.objects.filter(pk=pk).update(webhook_secret=whatsnap.crypto.decrypt(secret))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0006_account_gateway_resource")]

    operations = [
        migrations.AddField(
            model_name="apitoken", name="prefix",
            field=models.CharField(db_index=True, default="", editable=False, max_length=16),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="apitoken", name="key_hash",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        # no way back: the plaintext of a key cannot be restored
        migrations.RunPython(hash_keys),
        migrations.RemoveField(model_name="apitoken", name="key"),
        migrations.AlterField(
            model_name="apitoken", name="key_hash",
            field=models.CharField(editable=False, max_length=64, unique=True),
        ),
        migrations.AlterField(
            model_name="account", name="webhook_secret",
            field=models.TextField(default=accounts.models._new_secret, editable=False),
        ),
        migrations.RunPython(encrypt_webhook_secrets, decrypt_webhook_secrets),
        migrations.AlterField(
            model_name="account", name="webhook_secret",
            field=whatsnap.crypto.EncryptedTextField(default=accounts.models._new_secret, editable=False),
        ),
    ]
