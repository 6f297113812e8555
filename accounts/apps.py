from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Locations and messaging accounts"

    def ready(self):
        from accounts import checks  # noqa: F401  (registers system checks)
        from accounts import subscribers  # noqa: F401  (registers its subscribers)
        from accounts.alerts import quiet_accounts_sweep
        from whatsnap.tasks import register_sweep

        register_sweep(quiet_accounts_sweep)  # silence alerts (quiet_alert_minutes)

