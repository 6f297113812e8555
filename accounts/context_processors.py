from django.utils.functional import SimpleLazyObject

from accounts.alerts import alerts_for_location
from accounts.tenancy import memberships_for_user


def tenancy(request):
    location = getattr(request, "location", None)
    user = getattr(request, "user", None)
    # read only when a page shows the location switcher (HTMX fragments never do)
    mine = SimpleLazyObject(lambda: list(memberships_for_user(user)) if location is not None else [])
    # the banner of the location's standing account alerts (accounts.alerts), on every page
    alerts = SimpleLazyObject(lambda: list(alerts_for_location(location.pk)) if location is not None else [])
    return {"current_location": location, "my_memberships": mine, "account_alerts": alerts,
            "two_factor_setup_pending": getattr(request, "two_factor_setup_pending", False)}
