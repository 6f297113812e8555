from django.contrib import admin

from ghl.models import OutboxItem


@admin.register(OutboxItem)
class OutboxItemAdmin(admin.ModelAdmin):
    list_display = ["id", "location", "operation", "contact", "status", "attempts", "created_at", "done_at"]
    list_filter = ["status", "operation", "location"]
    readonly_fields = [f.name for f in OutboxItem._meta.fields]
