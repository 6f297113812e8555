"""Registry of messaging backends. A backend's module is imported the first time it is asked
for; what a backend is (its label, the kinds it serves, whether it is simulated) is declared by
its Provider class, and everything outside providers/ asks here rather than naming one."""
from importlib import import_module

from accounts.providers.base import Provider

# backend key -> its Provider class; the order is the order backends are offered in
_BACKENDS = {
    "sandbox": "accounts.providers.sandbox.SandboxProvider",
    "twilio": "accounts.providers.twilio.TwilioProvider",
    "evolution": "accounts.providers.evolution.EvolutionProvider",
    "waha": "accounts.providers.waha.WahaProvider",
    "bluebubbles": "accounts.providers.bluebubbles.BlueBubblesProvider",
    "android_sms": "accounts.providers.android_sms.AndroidSmsProvider",
}
_cache: dict[str, Provider] = {}


def get_provider(key: str) -> Provider:
    if key not in _cache:
        try:
            module, cls = _BACKENDS[key].rsplit(".", 1)
        except KeyError:
            raise LookupError(f"unknown messaging backend {key!r}") from None
        _cache[key] = getattr(import_module(module), cls)()
    return _cache[key]


def backend_choices() -> list[tuple[str, str]]:
    return [(key, get_provider(key).label) for key in _BACKENDS]


def real_backends(*kinds: str) -> list[str]:
    """The backends that connect accounts of any of these kinds for real, in registry order."""
    return [key for key in _BACKENDS if not get_provider(key).simulated and set(kinds) & set(get_provider(key).kinds)]


def simulated_backend(kind: str) -> str | None:
    return next((key for key in _BACKENDS if get_provider(key).simulated and kind in get_provider(key).kinds), None)


def backends_for_kind(kind: str) -> tuple[str, ...]:
    """The backends that can serve accounts of this kind: the real ones (the first is the
    kind's default), then the simulated one."""
    simulated = simulated_backend(kind)
    return (*real_backends(kind), *([simulated] if simulated else []))
