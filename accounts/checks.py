from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=True)
def public_base_url_check(app_configs, **kwargs):
    errors = []
    if not settings.DEBUG and settings.PUBLIC_BASE_URL.startswith("http://127.0.0.1"):
        errors.append(Warning(
            "PUBLIC_BASE_URL points at loopback: providers cannot reach the webhook URLs.",
            hint="Set PUBLIC_BASE_URL to the public https address of this deployment.",
            id="whatsnap.W001",
        ))
    return errors
