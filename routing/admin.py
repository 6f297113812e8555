from django.contrib import admin

from routing.models import RoutingRule, Team
from whatsnap.admin_scoping import LocationScopedAdmin


@admin.register(Team)
class TeamAdmin(LocationScopedAdmin, admin.ModelAdmin):
    location_field = "location"
    list_display = ["name", "location", "strategy", "sticky"]
    list_filter = ["location", "strategy"]
    filter_horizontal = ["members"]


@admin.register(RoutingRule)
class RoutingRuleAdmin(LocationScopedAdmin, admin.ModelAdmin):
    location_field = "location"
    list_display = ["position", "name", "location", "enabled", "tag_mode", "account", "platform", "hours", "target", "target_user", "target_team"]
    list_display_links = ["name"]
    list_editable = ["position", "enabled"]
    list_filter = ["location", "enabled", "target"]
    filter_horizontal = ["tags"]
