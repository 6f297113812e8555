from django.apps import AppConfig


class HooksConfig(AppConfig):
    name = "hooks"
    verbose_name = "Outgoing webhooks"

    def ready(self):
        from hooks import subscribers, tasks
        from whatsnap.tasks import register_sweep

        subscribers.register()
        register_sweep(tasks.sweep)
