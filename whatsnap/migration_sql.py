"""SQL a migration runs on PostgreSQL only (trigram indexes, triggers): SQLite, the embedded
default, has no such thing and needs none of it."""
from django.db import migrations


def postgresql_only(forward: list[str], backward: list[str]) -> migrations.RunPython:
    """A migration operation running `forward` (and `backward` when unapplied) statement by
    statement on PostgreSQL, and nothing elsewhere."""
    def run(statements):
        def operation(apps, schema_editor):
            if schema_editor.connection.vendor == "postgresql":
                for sql in statements:
                    schema_editor.execute(sql)
        return operation
    return migrations.RunPython(run(forward), run(backward))
