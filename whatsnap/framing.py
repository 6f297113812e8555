"""Who may show WhatSnap's pages in a frame: WhatSnap itself and the GHL_EMBED_ORIGINS (GHL's
app, white-label domains), so WhatSnap works as a custom page inside GoHighLevel and nowhere
else. Settings-driven; no app imports.

Every response gets `Content-Security-Policy: frame-ancestors 'self' <origins>` (added to a
policy the view set itself) and loses Django's `X-Frame-Options: DENY`, which cannot name
other origins. With no origins configured nothing may frame us: frame-ancestors 'none' and
X-Frame-Options stays.

Inside GHL's frame WhatSnap is a third-party site: its cookies need `SameSite=None; Secure`
(settings, only over https) and get the `Partitioned` attribute here (CHIPS), so the session
made inside GHL lives only under GHL's top-level site and no other site can carry it along.

The Django admin (operators only, never opened inside GHL) may not be framed by anyone: every
agency can put its own script on GHL's pages, so a GHL origin is no safer a frame for it than
any other site."""
from django.conf import settings
from django.urls import NoReverseMatch, reverse

NO_FRAMES = "frame-ancestors 'none'"


def frame_ancestors(request=None) -> str:
    origins = settings.GHL_EMBED_ORIGINS
    if not origins or _operators_only(request):
        return NO_FRAMES
    return "frame-ancestors " + " ".join(["'self'", *origins])


def _operators_only(request) -> bool:
    try:
        prefix = reverse("admin:index")
    except NoReverseMatch:
        return False
    return request is not None and request.path.startswith(prefix)


def _with_frame_ancestors(policy: str, directive: str) -> str:
    parts = [part.strip() for part in policy.split(";") if part.strip()]
    if any(part.lower().startswith("frame-ancestors") for part in parts):
        return policy  # the view decided
    return "; ".join([*parts, directive])


def partition(response) -> None:
    """Cross-site cookies (SameSite=None; Secure) become Partitioned. Python's Morsel has no
    'partitioned' attribute (3.14 adds one), so the flag rides on the SameSite value."""
    for morsel in response.cookies.values():
        samesite = str(morsel["samesite"] or "")
        if samesite.lower() == "none" and morsel["secure"]:
            morsel["samesite"] = "None; Partitioned"


class FramingMiddleware:
    """Sits outside the session, CSRF and clickjacking middleware: it sees the response after
    they set their cookies and headers."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        directive = frame_ancestors(request)
        policy = response.get("Content-Security-Policy")
        response["Content-Security-Policy"] = _with_frame_ancestors(policy, directive) if policy else directive
        if directive == NO_FRAMES:
            response.setdefault("X-Frame-Options", "DENY")
        else:
            response.headers.pop("X-Frame-Options", None)
        if settings.EMBED_COOKIES_PARTITIONED:
            partition(response)
        return response
