from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"

    def ready(self):
        from routing import subscribers  # noqa: F401  (registers its subscribers)

