"""PostgreSQL: every pending row inserted into the inbound event table notifies the channel
the workers' claim loops LISTEN on (whatsnap/listener.py, conversations/ingest.py), so a
webhook's ack is one statement (the insert) instead of an insert and a `SELECT pg_notify(...)`.
NOTIFY is sent when the inserting transaction commits, never if it rolls back, and once per
transaction however many rows it inserted (PostgreSQL folds identical notifications). Rows kept
unfiled wake nobody. SQLite has no NOTIFY: there the ack publishes on Redis or the loops poll."""
from django.db import migrations

from whatsnap.migration_sql import postgresql_only

FORWARD = [
    """CREATE OR REPLACE FUNCTION whatsnap_inbound_event_notify() RETURNS trigger AS $$
       BEGIN PERFORM pg_notify('whatsnap_inbound', ''); RETURN NULL; END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER whatsnap_inbound_event_notify AFTER INSERT ON conversations_inboundevent
       FOR EACH ROW WHEN (NEW.status = 'pending') EXECUTE FUNCTION whatsnap_inbound_event_notify()""",
]
BACKWARD = [
    "DROP TRIGGER IF EXISTS whatsnap_inbound_event_notify ON conversations_inboundevent",
    "DROP FUNCTION IF EXISTS whatsnap_inbound_event_notify()",
]


class Migration(migrations.Migration):
    dependencies = [("conversations", "0017_upload")]
    operations = [postgresql_only(FORWARD, BACKWARD)]
