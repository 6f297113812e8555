"""The conversations app's services, for the layers above (GHL, pages, API). The work is in:

- receiving.py — webhook events stored on the ack path, then filed one transaction each;
- sending.py — replies queued (message_send, message_retry);
- pacing.py — the per-account send queue: paced drains, one send, retries with backoff;
- statuses.py — delivery status, forward only;
- actions.py — what agents do to a conversation: assign, status, read/unread, notes."""
from conversations.actions import (  # noqa: F401
    conversation_assign,
    conversation_mark_read,
    conversation_mark_unread,
    conversation_set_status,
    note_add,
)
from conversations.pacing import (  # noqa: F401
    MAX_SEND_ATTEMPTS,
    STUCK_SENDING_SECONDS,
    message_deliver,
    messages_fail_stuck,
)
from conversations.receiving import inbound_event_process, webhook_events_record  # noqa: F401
from conversations.sending import message_retry, message_send  # noqa: F401
from conversations.statuses import message_status_advance  # noqa: F401

__all__ = [
    "conversation_assign", "conversation_mark_read", "conversation_mark_unread", "conversation_set_status", "note_add",
    "MAX_SEND_ATTEMPTS", "STUCK_SENDING_SECONDS", "message_deliver", "messages_fail_stuck",
    "inbound_event_process", "webhook_events_record", "message_retry", "message_send", "message_status_advance",
]
