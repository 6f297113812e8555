"""The inbox's snooze menu: 1 hour, tomorrow morning, next week, or a time of one's own.
Times are read in the agent's zone (the one accounts.tenancy activates for the request:
theirs, else the location's), so "tomorrow morning" is 9:00 where the agent is."""
from datetime import datetime, time, timedelta

from django.utils import timezone

MORNING = time(9, 0)
PRESETS = (("1h", "1 hour"), ("tomorrow", "Tomorrow morning"), ("next_week", "Next week"))


def _at_morning(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, MORNING), timezone.get_current_timezone())


def preset_time(choice: str, now: datetime | None = None) -> datetime | None:
    """When a preset ends: an hour from now; 9:00 tomorrow; 9:00 next Monday (a week from
    today's Monday, so on a Monday it is the Monday after). None for an unknown choice."""
    now = timezone.localtime(now or timezone.now())
    if choice == "1h":
        return now + timedelta(hours=1)
    if choice == "tomorrow":
        return _at_morning(now.date() + timedelta(days=1))
    if choice == "next_week":
        return _at_morning(now.date() + timedelta(days=7 - now.weekday()))
    return None


def parse_local(value: str) -> datetime | None:
    """A datetime-local value typed by the agent (their zone), or None when it is not one."""
    try:
        naive = datetime.fromisoformat((value or "").strip())
    except ValueError:
        return None
    return timezone.make_aware(naive) if timezone.is_naive(naive) else naive


def snooze_until(choice: str, custom: str = "") -> datetime | None:
    """The end of the snooze the menu asked for ("custom" reads the typed time); None when
    nothing usable was chosen (the action then says to pick a time in the future)."""
    if choice in ("", "custom"):
        return parse_local(custom)
    return preset_time(choice)


def menu(now: datetime | None = None) -> list[dict]:
    """The presets with the moment each ends, for the menu's labels."""
    return [{"key": key, "label": label, "at": preset_time(key, now)} for key, label in PRESETS]
