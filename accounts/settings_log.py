"""The account settings change log (AccountSettingsChange) as people read it, on the settings
page and in the flash after Save: the form's labels instead of field names, "on"/"off" for a
switch, 0 as 0, "—" for nothing, and the names of the default assignee and team."""
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.utils.text import capfirst

from accounts.forms import AccountSettingsForm
from accounts.models import Account

NAMED = ("default_assignee_id", "default_team_id")  # stored as ids


def setting_label(field: str) -> str:
    """'send_read_receipts' -> 'Send read receipts' (the label the settings form shows)."""
    name = field.removesuffix("_id")
    label = AccountSettingsForm.Meta.labels.get(name)
    if label:
        return label
    try:
        return capfirst(Account._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:  # a field an earlier version had: its name, readable
        return capfirst(name.replace("_", " "))


def setting_value(field: str, value, names: dict | None = None) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if field == "business_hours" and isinstance(value, dict):
        return "; ".join(f"{day} " + " ".join("-".join(span) for span in spans) for day, spans in value.items()) or "always open"
    if value is None or value == "":
        return "the location's" if field == "timezone" else "—"
    if field in NAMED:
        return (names or {}).get((field, value), f"#{value} (since removed)")
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _names(rows) -> dict:
    """The users and teams the rows name, by (field, id)."""
    wanted = {field: set() for field in NAMED}
    for row in rows:
        for field, pair in row.changes.items():
            if field in wanted:
                wanted[field].update(v for v in pair if v is not None)
    names = {}
    if wanted["default_assignee_id"]:
        for user in get_user_model().objects.filter(pk__in=wanted["default_assignee_id"]):
            names[("default_assignee_id", user.pk)] = user.get_username()
    if wanted["default_team_id"]:
        team_model = Account._meta.get_field("default_team").related_model
        for team in team_model.objects.filter(pk__in=wanted["default_team_id"]):
            names[("default_team_id", team.pk)] = str(team)
    return names


def settings_changes_shown(account: Account, limit: int = 20) -> list[dict]:
    """The newest changes: {at, actor, fields: [(label, old, new), …]}."""
    rows = list(account.settings_changes.select_related("actor")[:limit])
    names = _names(rows)
    return [{"at": row.at, "actor": row.actor,
             "fields": [(setting_label(field), setting_value(field, old, names), setting_value(field, new, names))
                        for field, (old, new) in row.changes.items()]}
            for row in rows]
