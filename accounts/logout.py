"""Logging out. A session signed in from inside GHL (pinned to its location) has no password to
log in again with: it goes back to the GHL custom page, which signs the GHL user in anew."""
from django.contrib.auth import views as auth_views
from django.urls import reverse

from accounts.tenancy import PINNED_KEY


class LogoutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        self.from_ghl = bool(request.session.get(PINNED_KEY))
        return super().post(request, *args, **kwargs)

    def get_success_url(self):
        if getattr(self, "from_ghl", False):
            return reverse("ghl-embed")
        return super().get_success_url()
