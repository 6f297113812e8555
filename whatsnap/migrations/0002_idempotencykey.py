"""IdempotencyKey moves from hooks to whatsnap (the API's idempotency is base-layer plumbing).
State only: the table stays hooks_idempotencykey, created by hooks 0001 and never touched here,
so a fresh database and an existing one end up the same. hooks 0005 then drops the model from
the hooks app's state; unmigrating runs the other way round."""
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("whatsnap", "0001_initial"),
        ("accounts", "0001_initial"),
        ("hooks", "0001_initial"),  # creates the table
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="IdempotencyKey",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("key", models.CharField(max_length=255)),
                        ("fingerprint", models.CharField(help_text="SHA-256 of method, path and body", max_length=64)),
                        ("response_status", models.PositiveIntegerField(default=0)),
                        ("response_body", models.JSONField(default=dict)),
                        ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ("token", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.apitoken")),
                    ],
                    options={
                        "db_table": "hooks_idempotencykey",
                        "constraints": [models.UniqueConstraint(fields=("token", "key"), name="uniq_idempotency_key_per_token")],
                    },
                ),
            ],
        ),
    ]
