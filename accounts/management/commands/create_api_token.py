from django.core.management.base import BaseCommand
from django.utils.text import slugify

from accounts.models import Location
from accounts.services import api_token_create


class Command(BaseCommand):
    help = "Create a REST API token for a location (created if missing); prints the key last."

    def add_arguments(self, parser):
        parser.add_argument("location", help="location name")
        parser.add_argument("--name", default="cli", help="a label for the token")

    def handle(self, *args, location, name, **options):
        loc, created = Location.objects.get_or_create(name=location, defaults={"slug": slugify(location)[:60] or "location"})
        if created:
            self.stderr.write(f"created location {loc.name!r}")
        token, key = api_token_create(location=loc, name=name)
        self.stderr.write(f"API key {token.masked_key} for {loc.name!r}: shown once, only a hash is kept")
        self.stdout.write(key)
