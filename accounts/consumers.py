from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.db import database_sync_to_async

from accounts.tenancy import SESSION_KEY, membership_for, pinned_location_id
from whatsnap.live import ensure_relay_running, location_group
from whatsnap.two_factor import blocked_reason, session_is_verified


def _second_factor_missing(user, session, membership) -> bool:
    """The pages' two-factor rule (whatsnap.two_factor.TwoFactorMiddleware) for the socket."""
    verified = session_is_verified(session, user)
    return bool(blocked_reason(user, verified=verified, location=membership.location))


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """A thin pipe: joins the user's current location group and forwards live events."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        session = self.scope.get("session") or {}
        pinned = pinned_location_id(session, user)  # a session signed in from GHL: that location only
        if pinned is not None:
            user.pinned_location_id = pinned
        membership = await database_sync_to_async(membership_for)(user, pinned if pinned is not None else session.get(SESSION_KEY))
        if membership is None or await database_sync_to_async(_second_factor_missing)(user, session, membership):
            await self.close(code=4403)
            return
        self.group = location_group(membership.location_id)
        ensure_relay_running()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def live_event(self, message):
        await self.send_json(message["payload"])
