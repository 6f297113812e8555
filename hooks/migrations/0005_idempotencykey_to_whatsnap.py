"""IdempotencyKey is whatsnap's now (whatsnap 0002 took it into its state, same table): the
hooks app forgets it. State only; the table and its rows stay as they are."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("hooks", "0004_sweep_registered"),
        ("whatsnap", "0002_idempotencykey"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name="IdempotencyKey")],
        ),
    ]
