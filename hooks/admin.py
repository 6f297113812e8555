from django.contrib import admin, messages

from hooks import services
from hooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from whatsnap.admin_scoping import LocationScopedAdmin, LocationScopedInline
from whatsnap.models import IdempotencyKey


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(LocationScopedAdmin, admin.ModelAdmin):
    location_field = "location"
    list_display = ["url", "location", "events", "is_active", "created_at"]
    list_filter = ["is_active", "location"]
    search_fields = ["url", "description"]
    fields = ["location", "url", "events", "description", "is_active", "created_at"]
    readonly_fields = ["created_at"]  # the secret is never rendered
    actions = ["rotate_secret"]

    def save_model(self, request, obj, form, change):
        if not obj.secret_encrypted:
            obj.secret = services.new_signing_secret()
            messages.info(request, f"Signing secret (shown once): {obj.secret}")
        super().save_model(request, obj, form, change)

    @admin.action(description="Rotate the signing secret (shown once)")
    def rotate_secret(self, request, queryset):
        for subscription in queryset:
            secret = services.hook_subscription_rotate_secret(subscription=subscription)
            messages.info(request, f"New secret for {subscription.url}: {secret}")


class WebhookAttemptInline(LocationScopedInline, admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["at", "status_code", "duration_ms", "error", "response_excerpt"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(LocationScopedAdmin, admin.ModelAdmin):
    location_field = "location"
    list_display = ["id", "event", "subscription", "status", "attempts", "last_status_code", "next_attempt_at", "created_at"]
    list_filter = ["status", "event", "location"]
    search_fields = ["event_id", "subscription__url"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    inlines = [WebhookAttemptInline]
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Replay the selected deliveries")
    def replay(self, request, queryset):
        done = 0
        for delivery in queryset.select_related("subscription"):
            try:
                services.hook_delivery_replay(delivery=delivery)
                done += 1
            except services.ApplicationError as exc:
                messages.error(request, f"#{delivery.pk}: {exc.message}")
        messages.info(request, f"{done} delivery(ies) queued again.")


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(LocationScopedAdmin, admin.ModelAdmin):
    location_field = "token__location"
    list_display = ["key", "token", "response_status", "created_at"]
    readonly_fields = [f.name for f in IdempotencyKey._meta.fields]

    def has_add_permission(self, request):
        return False
