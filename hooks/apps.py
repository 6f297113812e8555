from django.apps import AppConfig


class HooksConfig(AppConfig):
    name = "hooks"
    verbose_name = "Outgoing webhooks"

    def ready(self):
        from hooks import subscribers, tasks  # noqa: F401  (subscribers register themselves)
        from whatsnap.tasks import register_sweep

        register_sweep(tasks.sweep)
