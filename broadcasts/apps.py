from django.apps import AppConfig


class BroadcastsConfig(AppConfig):
    name = "broadcasts"

    def ready(self):
        from accounts.panels import register_detail_context
        from broadcasts import subscribers, tasks  # noqa: F401  (subscribers register themselves)
        from broadcasts.caps import cap_summary
        from whatsnap.tasks import register_sweep

        register_sweep(tasks.broadcasts_sweep)
        register_detail_context("broadcast_cap", cap_summary)  # an account page's "x left today"
