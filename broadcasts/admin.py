"""Broadcasts in the Django admin: read-only rows (compose and steer them on the Broadcasts
page or the API, where the rules are enforced), with cancel as an action."""
from django.contrib import admin

from broadcasts.models import Broadcast, BroadcastRecipient
from broadcasts.services import broadcast_cancel
from whatsnap.admin_scoping import LocationScopedAdmin
from whatsnap.errors import ApplicationError


@admin.register(Broadcast)
class BroadcastAdmin(LocationScopedAdmin, admin.ModelAdmin):
    location_field = "location"
    list_display = ["name", "location", "status", "account", "scheduled_at", "started_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["name", "text"]
    actions = ["cancel"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel the selected broadcasts")
    def cancel(self, request, queryset):
        done = 0
        for broadcast in queryset:
            try:
                broadcast_cancel(broadcast=broadcast, reason=f"Cancelled in the admin by {request.user.get_username()}.")
                done += 1
            except ApplicationError:
                pass  # finished already
        self.message_user(request, f"{done} broadcast(s) cancelled.")


@admin.register(BroadcastRecipient)
class BroadcastRecipientAdmin(LocationScopedAdmin, admin.ModelAdmin):
    location_field = "broadcast__location"
    list_display = ["broadcast", "contact", "account", "status", "reason", "queued_at"]
    list_filter = ["status"]
    raw_id_fields = ["contact", "message"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
