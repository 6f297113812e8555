"""/inbox/notifications/: what notify.js asks on every page — who I am, my notification
preferences and the unread count for the tab title (of my current location only)."""
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from accounts.tenancy import location_required
from conversations.notifications import notified_unread


@require_GET
@location_required
def notify_state(request):
    membership = request.membership
    response = JsonResponse({
        "me": request.user.pk,
        "unread": notified_unread(membership),
        "browser": membership.notify_browser,
        "sound": membership.notify_sound,
        "unassigned": membership.notify_unassigned,
    })
    response["Cache-Control"] = "no-store"
    return response
