from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"

    def ready(self):
        from routing import subscribers  # noqa: F401  (registers its subscribers)
        from routing.queue import queue_sweep
        from whatsnap.tasks import register_sweep

        register_sweep(queue_sweep)  # waiting conversations a lost drain left while someone has room

