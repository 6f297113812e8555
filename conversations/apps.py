from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"

    def ready(self):
        from conversations import subscribers, tasks  # noqa: F401  (subscribers register themselves)
        from whatsnap.tasks import register_sweep

        register_sweep(tasks.sweep_pending)
