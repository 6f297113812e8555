from django.contrib import admin, messages

from accounts import services
from accounts.models import Account, AccountEvent, ApiToken, Location, Membership


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "timezone", "ghl_location_id", "created_at"]
    search_fields = ["name", "slug", "ghl_location_id"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


class AccountEventInline(admin.TabularInline):
    model = AccountEvent
    extra = 0
    can_delete = False
    readonly_fields = ["at", "from_status", "to_status", "reason"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "location", "kind", "backend", "phone_number", "status", "last_event_at", "archived_at"]
    list_filter = [("archived_at", admin.EmptyFieldListFilter), "kind", "backend", "status", "location"]
    search_fields = ["name", "slug", "phone_number"]
    readonly_fields = ["slug", "backend", "kind", "status", "last_event_at", "last_error", "last_webhook_at", "qr_expires_at", "created_at", "archived_at"]
    exclude = ["credentials", "webhook_secret", "qr_payload"]  # secrets never rendered
    inlines = [AccountEventInline]
    actions = ["reconnect", "disconnect"]

    def has_add_permission(self, request):
        return False  # accounts are created through "Add Account" (it creates the tag and connects)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("location")

    def save_model(self, request, obj, form, change):
        """Settings edited here go through the same validated, audited path as the settings page."""
        values, others = {}, {}
        for field in form.changed_data:
            key = obj._meta.get_field(field).attname  # default_assignee -> default_assignee_id
            (values if key in services.SETTINGS_FIELDS else others)[key] = getattr(obj, key)
        if others:
            type(obj).objects.filter(pk=obj.pk).update(**others)
        if values:
            services.account_settings_update(account=type(obj).objects.get(pk=obj.pk), actor=request.user, **values)

    @admin.action(description="Reconnect selected accounts")
    def reconnect(self, request, queryset):
        live = queryset.filter(archived_at__isnull=True)
        for account in live:
            services.account_connect(account=account)
        skipped = queryset.count() - live.count()
        messages.info(request, f"Reconnect requested for {live.count()} account(s)."
                      + (f" {skipped} deleted account(s) skipped." if skipped else ""))

    @admin.action(description="Disconnect selected accounts")
    def disconnect(self, request, queryset):
        for account in queryset:
            services.account_disconnect(account=account, reason=f"disconnected by {request.user} in admin")
        messages.info(request, f"{queryset.count()} account(s) disconnected.")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "location", "user", "created_at", "last_used_at"]
    list_filter = ["location"]
    readonly_fields = ["key", "created_at", "last_used_at"]


from accounts.models import AccountSettingsChange  # noqa: E402


@admin.register(AccountSettingsChange)
class AccountSettingsChangeAdmin(admin.ModelAdmin):
    """The audit of account settings: who changed what, when (read-only)."""

    list_display = ["account", "actor", "at", "changes"]
    list_filter = ["account__location", "account"]
    readonly_fields = [f.name for f in AccountSettingsChange._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
