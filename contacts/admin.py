from django.contrib import admin

from contacts.models import Contact, ContactAccount, ContactTag, Tag
from whatsnap.admin_scoping import LocationScopedAdmin, LocationScopedInline


@admin.register(Tag)
class TagAdmin(LocationScopedAdmin, admin.ModelAdmin):
    location_field = "location"
    list_display = ["name", "location", "account", "created_at"]
    list_filter = ["location"]
    search_fields = ["name"]
    readonly_fields = ["account"]


class ContactTagInline(LocationScopedInline, admin.TabularInline):
    model = ContactTag
    extra = 0
    autocomplete_fields = ["tag"]


class ContactAccountInline(LocationScopedInline, admin.TabularInline):
    model = ContactAccount
    extra = 0
    readonly_fields = ["account", "platform", "first_seen_at", "last_seen_at"]


@admin.register(Contact)
class ContactAdmin(LocationScopedAdmin, admin.ModelAdmin):
    location_field = "location"
    list_display = ["phone", "name", "location", "kind", "opted_out", "created_at"]
    list_filter = ["location", "kind", "opted_out"]
    search_fields = ["phone", "name"]
    inlines = [ContactTagInline, ContactAccountInline]
