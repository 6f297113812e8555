"""Trigram indexes so inbox search stays fast on PostgreSQL with millions of messages.
Django's icontains compiles to UPPER(col) LIKE UPPER(%s), hence indexes on UPPER(col).
SQLite has no pg_trgm: nothing to do there."""
from django.db import migrations

from whatsnap.migration_sql import postgresql_only

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS msg_text_trgm ON conversations_message USING gin (UPPER(text) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS contact_name_trgm ON contacts_contact USING gin (UPPER(name) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS contact_phone_trgm ON contacts_contact USING gin (UPPER(phone) gin_trgm_ops)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS msg_text_trgm",
    "DROP INDEX IF EXISTS contact_name_trgm",
    "DROP INDEX IF EXISTS contact_phone_trgm",
]


class Migration(migrations.Migration):
    dependencies = [("conversations", "0003_message_is_note_conversationevent_cannedresponse"), ("contacts", "0001_initial")]
    operations = [postgresql_only(FORWARD, BACKWARD)]
