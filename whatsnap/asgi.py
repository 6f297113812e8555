"""ASGI entry point: HTTP (Django) and websockets (Channels) from one process."""
import asyncio
import os

import django
from asgiref.sync import SyncToAsync, ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whatsnap.settings")
django.setup(set_prefix=False)


class BoundedThreadsASGIHandler(ASGIHandler):
    """Django's ASGI handler, with the sync part of each request (our middleware and views are
    sync) run on one of WEB_THREADS long-lived threads instead of a new thread per request.

    Stock Django opens a ThreadSensitiveContext per request, so 50 concurrent webhooks mean 50
    fresh threads taking turns on the GIL; here a request waits in the event loop (costing
    nothing) until one of the pool's threads is free, and threads are reused."""

    def __init__(self, threads: int):
        super().__init__()
        self.threads = threads
        self._contexts: asyncio.Queue | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        if self._contexts is None:
            self._contexts = asyncio.Queue()
            for _ in range(self.threads):
                self._contexts.put_nowait(ThreadSensitiveContext())
        context = await self._contexts.get()
        token = SyncToAsync.thread_sensitive_context.set(context)
        try:
            await self.handle(scope, receive, send)
        finally:
            SyncToAsync.thread_sensitive_context.reset(token)
            self._contexts.put_nowait(context)


def _http_app():
    from django.conf import settings

    if settings.WEB_THREADS > 0:
        return BoundedThreadsASGIHandler(settings.WEB_THREADS)
    return ASGIHandler()  # stock Django: a thread per request


django_asgi_app = _http_app()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from accounts.consumers import LiveConsumer  # noqa: E402

websocket_urlpatterns = [path("ws/live/", LiveConsumer.as_asgi())]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
