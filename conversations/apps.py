from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"

    def ready(self):
        from accounts.panels import register_detail_context
        from conversations import subscribers, tasks  # noqa: F401  (subscribers register themselves)
        from conversations.pacing import queue_eta
        from conversations.scheduling import scheduled_messages_sweep
        from conversations.uploads import uploads_sweep
        from conversations.ingest import CHANNEL, inbound_events_file_batch
        from whatsnap.listener import register_drain
        from whatsnap.tasks import register_sweep

        register_drain(CHANNEL, inbound_events_file_batch)  # the workers' claim loops file stored events
        register_sweep(tasks.sweep_pending)
        register_sweep(tasks.unfiled_prune)  # unfiled events past UNFILED_EVENT_RETENTION_DAYS
        register_sweep(scheduled_messages_sweep)  # due scheduled replies their one-off schedule missed
        register_sweep(uploads_sweep)  # composer uploads never sent, past UPLOAD_UNSENT_RETENTION_HOURS
        register_detail_context("queue", queue_eta)  # an account page's send queue
