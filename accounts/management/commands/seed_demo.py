import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Location, Membership


class Command(BaseCommand):
    help = "On an empty database: a demo location with an admin and an agent; prints the logins."

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        if User.objects.exists():
            self.stdout.write("Database already has users; demo logins not created.")
            return
        location = Location.objects.create(name="Demo Business", slug="demo")
        logins = []
        # Neither login is staff, let alone a superuser: a superuser reads every tenant's data
        # in /admin/, and the location admin has everything they need on the product's pages.
        for username, role in (("admin", "admin"), ("agent", "agent")):
            password = secrets.token_urlsafe(9)
            # an address (a reserved example domain): account alerts e-mail the admins, and one
            # without an address is e-mailed nothing (embedded default: printed to the worker's log)
            user = User.objects.create_user(username=username, password=password, first_name=username.capitalize(),
                                            email=f"{username}@example.com")
            Membership.objects.create(user=user, location=location, role=role)
            logins.append((username, password, role))
        self.stdout.write("Demo logins (shown once):")
        for username, password, role in logins:
            self.stdout.write(f"  {role:6} user: {username:6} password: {password}")
        self.stdout.write("Their e-mail addresses are admin@example.com and agent@example.com: without EMAIL_HOST, "
                          "e-mails (account alerts) are printed to the worker's log instead of sent.")
        self.stdout.write("The Django admin (/admin/) is for operators: create one with `python manage.py createsuperuser`.")
