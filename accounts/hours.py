"""Business hours: {"mon": [["09:00", "17:00"]], ...} in the account's time zone (else the
location's). No hours configured means always open."""
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_hours(raw: dict) -> dict[str, list[tuple[time, time]]]:
    """Validate and parse; raises ValueError with a readable reason."""
    parsed = {}
    for day, spans in (raw or {}).items():
        if day not in DAYS:
            raise ValueError(f"unknown day {day!r}; use {', '.join(DAYS)}")
        parsed[day] = []
        for span in spans:
            start, end = (_clock_time(day, v) for v in span)
            if end <= start:
                raise ValueError(f"{day}: {span[0]}-{span[1]} ends before it starts")
            parsed[day].append((start, end))
    return parsed


def _clock_time(day: str, value) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{day}: {value!r} is not a time of day; write 24-hour times like 09:00-17:30") from None


def account_zone(account) -> ZoneInfo:
    return ZoneInfo(account.timezone or account.location.timezone or "UTC")


def is_within_hours(account, at: datetime) -> bool:
    hours = parse_hours(account.business_hours)
    if not hours:
        return True
    local = at.astimezone(account_zone(account))
    spans = hours.get(DAYS[local.weekday()], [])
    return any(start <= local.time() < end for start, end in spans)


def next_open(account, after: datetime) -> datetime | None:
    """The first moment at or after `after` when the account is within its business hours:
    `after` itself when it is open then (or has no hours configured), else the start of its
    next opening (in its time zone, daylight saving included). None when hours are set but no
    day has any (never open)."""
    hours = parse_hours(account.business_hours)
    if not hours:
        return after
    zone = account_zone(account)
    local = after.astimezone(zone)
    for offset in range(8):  # a week ahead, and the rest of today's weekday a week later
        day = local.date() + timedelta(days=offset)
        for start, end in sorted(hours.get(DAYS[day.weekday()], [])):
            opens = datetime.combine(day, start, tzinfo=zone)
            closes = datetime.combine(day, end, tzinfo=zone)
            if opens <= local < closes:
                return after
            if opens > local:
                return opens
    return None
