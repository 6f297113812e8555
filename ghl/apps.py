from django.apps import AppConfig


class GhlConfig(AppConfig):
    name = "ghl"

    def ready(self):
        from ghl import subscribers, tasks
        from whatsnap.tasks import register_sweep

        subscribers.register()
        register_sweep(tasks.sweep)
