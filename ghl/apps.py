from django.apps import AppConfig


class GhlConfig(AppConfig):
    name = "ghl"

    def ready(self):
        from ghl import subscribers, tasks  # noqa: F401  (subscribers register themselves)
        from whatsnap.tasks import register_sweep

        register_sweep(tasks.sweep)
