from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "contacts"

    def ready(self):
        from contacts import subscribers  # noqa: F401  (registers its subscribers)

