"""Registry of messaging backends, imported lazily (a backend's SDK loads only when used)."""
from importlib import import_module

from accounts.providers.base import Provider

_BACKENDS = {
    "sandbox": ("accounts.providers.sandbox", "SandboxProvider", "Sandbox (simulated phone)"),
    "twilio": ("accounts.providers.twilio", "TwilioProvider", "Twilio"),
    "evolution": ("accounts.providers.evolution", "EvolutionProvider", "WhatsApp Web (Evolution API gateway)"),
    "waha": ("accounts.providers.waha", "WahaProvider", "WhatsApp Web (WAHA gateway)"),
    "bluebubbles": ("accounts.providers.bluebubbles", "BlueBubblesProvider", "iMessage (BlueBubbles on a Mac)"),
    "android_sms": ("accounts.providers.android_sms", "AndroidSmsProvider", "SMS (SMS Gateway for Android)"),
}
_cache: dict[str, Provider] = {}


def backend_choices() -> list[tuple[str, str]]:
    return [(key, label) for key, (_m, _c, label) in _BACKENDS.items()]


def get_provider(key: str) -> Provider:
    if key not in _cache:
        try:
            module, cls, _label = _BACKENDS[key]
        except KeyError:
            raise LookupError(f"unknown messaging backend {key!r}") from None
        _cache[key] = getattr(import_module(module), cls)()
    return _cache[key]
