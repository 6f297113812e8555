from django.utils.functional import SimpleLazyObject

from accounts.tenancy import memberships_for_user


def tenancy(request):
    location = getattr(request, "location", None)
    user = getattr(request, "user", None)
    # read only when a page shows the location switcher (HTMX fragments never do)
    mine = SimpleLazyObject(lambda: list(memberships_for_user(user)) if location is not None else [])
    return {"current_location": location, "my_memberships": mine,
            "two_factor_setup_pending": getattr(request, "two_factor_setup_pending", False)}
