from django.contrib import admin, messages
from django.db import transaction

from ghl.models import GhlConnection, GhlMessageLink, GhlUser, OutboxItem
from ghl.services import outbox_retry
from whatsnap.admin_scoping import LocationScopedAdmin


@admin.register(OutboxItem)
class OutboxItemAdmin(LocationScopedAdmin, admin.ModelAdmin):
    location_field = "location"
    list_display = ["id", "location", "operation", "contact", "status", "attempts", "last_status_code", "next_attempt_at", "updated_at"]
    list_filter = ["status", "operation", "location"]
    search_fields = ["last_error", "result"]
    readonly_fields = [f.name for f in OutboxItem._meta.fields]
    actions = ["retry"]

    @admin.action(description="Retry the selected failed operations")
    def retry(self, request, queryset):
        n = 0
        with transaction.atomic():
            for item in queryset.filter(status=OutboxItem.Status.FAILED).order_by("id"):
                outbox_retry(item=item)
                n += 1
        messages.success(request, f"{n} operation(s) queued again.")

    def has_add_permission(self, request):
        return False


@admin.register(GhlConnection)
class GhlConnectionAdmin(LocationScopedAdmin, admin.ModelAdmin):
    location_field = "location"
    list_display = ["location", "status", "provider_mode", "installed_at", "last_success_at", "paused_until"]
    list_filter = ["status", "provider_mode"]
    exclude = ["secrets", "rate_log"]
    readonly_fields = ["location", "company_id", "agency", "installed_ghl_location_id", "scope", "token_expires_at", "installed_by", "installed_at", "uninstalled_at",
                       "drain_lease_until", "daily_date", "daily_count", "last_success_at", "last_error", "last_error_at"]


@admin.register(GhlUser)
class GhlUserAdmin(LocationScopedAdmin, admin.ModelAdmin):
    location_field = "location"
    list_display = ["name", "email", "ghl_user_id", "user", "sends_through", "location"]
    list_filter = ["location"]


@admin.register(GhlMessageLink)
class GhlMessageLinkAdmin(LocationScopedAdmin, admin.ModelAdmin):
    location_field = "location"
    list_display = ["ghl_message_id", "origin", "message", "location", "created_at"]
    list_filter = ["origin", "location"]
    readonly_fields = ["location", "message", "ghl_message_id", "ghl_conversation_id", "origin", "created_at"]

