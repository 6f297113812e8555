from django.apps import AppConfig


class GhlConfig(AppConfig):
    name = "ghl"

    def ready(self):
        from accounts.panels import register_detail_context
        from ghl import checks, installs, subscribers, tasks  # noqa: F401  (subscribers and checks register themselves)
        from ghl.services import account_sync_health
        from whatsnap.tasks import register_sweep

        register_sweep(tasks.sweep)
        register_sweep(installs.installs_sweep)  # sub-accounts of an agency install that wait for GHL
        register_detail_context("ghl", account_sync_health)  # an account page's GHL card
