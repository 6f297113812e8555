from django.contrib import admin, messages

from accounts import services
from accounts.models import Account, AccountEvent, ApiToken, Location, Membership
from whatsnap.admin_scoping import LocationScopedAdmin, LocationScopedInline


class MembershipInline(LocationScopedInline, admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]

    # Joining a location needs the person's consent (an invitation they accept, or a new login
    # made for them): only operators attach an existing user here.
    def has_add_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_add_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return fields if request.user.is_superuser else [*fields, "user"]


@admin.register(Location)
class LocationAdmin(LocationScopedAdmin, admin.ModelAdmin):
    location_field = "pk"
    list_display = ["name", "slug", "timezone", "ghl_location_id", "created_at"]
    search_fields = ["name", "slug", "ghl_location_id"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def has_add_permission(self, request):
        # a new location would be one its creator does not administer yet: operators only
        return request.user.is_superuser and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        # deleting a location deletes every account, contact and message in it: operators only
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        # the GHL location id routes GHL's webhooks to this location: set by the OAuth install
        # only, or by an operator (another tenant's id would receive that tenant's messages)
        fields = super().get_readonly_fields(request, obj)
        return fields if request.user.is_superuser else [*fields, "ghl_location_id"]


class AccountEventInline(LocationScopedInline, admin.TabularInline):
    model = AccountEvent
    extra = 0
    can_delete = False
    readonly_fields = ["at", "from_status", "to_status", "reason"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(LocationScopedAdmin, admin.ModelAdmin):
    location_field = "location"
    list_display = ["name", "location", "kind", "backend", "phone_number", "status", "last_event_at", "archived_at"]
    list_filter = [("archived_at", admin.EmptyFieldListFilter), "kind", "backend", "status", "location"]
    search_fields = ["name", "slug", "phone_number"]
    # What the backend and WhatSnap own is never typed by hand: the location, the backend
    # settings and the gateway session name (a hand-typed one could adopt another account's
    # session), whatever the user; credentials are not even shown.
    readonly_fields = ["location", "slug", "backend", "kind", "config", "gateway_resource", "status", "last_event_at", "last_error",
                       "last_webhook_at", "qr_expires_at", "created_at", "archived_at"]
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
class ApiTokenAdmin(LocationScopedAdmin, admin.ModelAdmin):
    """Keys are stored hashed: the list shows their prefix; a key made here is shown once."""

    location_field = "location"
    list_display = ["masked_key", "name", "location", "user", "created_at", "last_used_at"]
    list_filter = ["location"]
    search_fields = ["prefix", "name"]
    ordering = ["-created_at", "-id"]
    fields = ["masked_key", "name", "location", "user", "created_at", "last_used_at"]
    readonly_fields = ["masked_key", "created_at", "last_used_at"]

    @admin.display(description="key")
    def masked_key(self, obj):
        return obj.masked_key if obj.pk else "(shown once, after saving)"

    def get_readonly_fields(self, request, obj=None):
        # a key stays with the location and member it was given for
        fields = super().get_readonly_fields(request, obj)
        return [*fields, "location", "user"] if obj else fields

    def save_model(self, request, obj, form, change):
        if not change:
            key = obj.issue_key()
            super().save_model(request, obj, form, change)
            messages.warning(request, f"API key “{obj.name or 'token'}” (shown once, copy it now): {key}")
            return
        super().save_model(request, obj, form, change)


from accounts.models import AccountSettingsChange  # noqa: E402


@admin.register(AccountSettingsChange)
class AccountSettingsChangeAdmin(LocationScopedAdmin, admin.ModelAdmin):
    """The audit of account settings: who changed what, when (read-only)."""

    location_field = "account__location"

    list_display = ["account", "actor", "at", "changes"]
    list_filter = ["account__location", "account"]
    readonly_fields = [f.name for f in AccountSettingsChange._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
