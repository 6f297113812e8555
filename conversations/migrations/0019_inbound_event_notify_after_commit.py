"""PostgreSQL: the insert trigger of 0018 goes. Its NOTIFY ran inside every ack's transaction,
and a notifying transaction holds PostgreSQL's global notify lock through its commit, so
notifying commits queue behind one another. The web process now sends the wake-up itself
after the commit, at most one per channel every 20 ms (whatsnap/listener.py)."""
from django.db import migrations

from whatsnap.migration_sql import postgresql_only

FORWARD = [
    "DROP TRIGGER IF EXISTS whatsnap_inbound_event_notify ON conversations_inboundevent",
    "DROP FUNCTION IF EXISTS whatsnap_inbound_event_notify()",
]
BACKWARD = [
    """CREATE OR REPLACE FUNCTION whatsnap_inbound_event_notify() RETURNS trigger AS $$
       BEGIN PERFORM pg_notify('whatsnap_inbound', ''); RETURN NULL; END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER whatsnap_inbound_event_notify AFTER INSERT ON conversations_inboundevent
       FOR EACH ROW WHEN (NEW.status = 'pending') EXECUTE FUNCTION whatsnap_inbound_event_notify()""",
]


class Migration(migrations.Migration):
    dependencies = [("conversations", "0018_inbound_event_notify")]
    operations = [postgresql_only(FORWARD, BACKWARD)]
