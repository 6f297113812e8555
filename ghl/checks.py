"""Deployment checks of the GHL app's settings (`manage.py check --deploy`)."""
from django.conf import settings
from django.core.checks import Error, register


@register(deploy=True)
def ghl_app_id_check(app_configs, **kwargs):
    """GHL signs every marketplace app's webhooks with one key, so only the app id tells our
    INSTALL / UNINSTALL from another app's (ghl/webhooks.py ignores events not naming it)."""
    if settings.GHL_CLIENT_ID and not settings.GHL_APP_ID:
        return [Error(
            "GHL_CLIENT_ID is set but GHL_APP_ID is not: another app's signed UNINSTALL could disconnect a sub-account.",
            hint="Set GHL_APP_ID to the marketplace app's id (My Apps › your app).",
            id="whatsnap.E021",
        )]
    return []
