from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "contacts"

    def ready(self):
        from contacts import subscribers  # noqa: F401  (registers its subscribers)
        from contacts.csv_import import import_sweep
        from whatsnap.tasks import register_sweep

        register_sweep(import_sweep)  # imports whose next chunk's task was lost go on
