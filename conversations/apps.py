from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"

    def ready(self):
        from conversations import subscribers, tasks
        from whatsnap.tasks import register_sweep

        subscribers.register()
        register_sweep(tasks.sweep_pending)
