"""How many broadcast messages an account may still hand to its queue today: its daily cap, or
less while a new number warms up (BROADCAST_WARMUP_FIRST_DAY on its first connected day,
doubling each day until the cap), counted in the account's local day. Replies are never
capped: only broadcast recipients count (BroadcastRecipient.queued_at)."""
from datetime import datetime, time, timedelta

from django.conf import settings
from django.utils import timezone

from accounts.hours import account_zone
from accounts.models import Account, AccountEvent
from broadcasts.models import BroadcastRecipient

clock = timezone.now  # tests replace it


def local_day_start(account: Account, now: datetime | None = None) -> datetime:
    zone = account_zone(account)
    local = (now or clock()).astimezone(zone)
    return datetime.combine(local.date(), time(0), tzinfo=zone)


def next_day_start(account: Account, now: datetime | None = None) -> datetime:
    zone = account_zone(account)
    start = local_day_start(account, now)
    return datetime.combine(start.date() + timedelta(days=1), time(0), tzinfo=zone)


def warmup_day(account: Account, now: datetime | None = None) -> int:
    """1 on the day the number first connected (or today if it never has), 2 the next day..."""
    first = (AccountEvent.objects.filter(account=account, to_status=Account.Status.CONNECTED)
             .order_by("at").values_list("at", flat=True).first())
    today = local_day_start(account, now).date()
    if first is None:
        return 1
    return max(1, (today - first.astimezone(account_zone(account)).date()).days + 1)


def cap_today(account: Account, now: datetime | None = None) -> int:
    cap = account.broadcast_daily_cap
    if not account.broadcast_warmup or cap == 0:
        return cap
    day = warmup_day(account, now)
    if day > 30:  # doubling from any first-day cap passes every allowed cap long before
        return cap
    return min(cap, settings.BROADCAST_WARMUP_FIRST_DAY * 2 ** (day - 1))


def used_today(account: Account, now: datetime | None = None) -> int:
    return BroadcastRecipient.objects.filter(account=account, queued_at__gte=local_day_start(account, now)).count()


def left_today(account: Account, now: datetime | None = None) -> int:
    return max(0, cap_today(account, now) - used_today(account, now))


def cap_summary(account: Account) -> dict:
    """What the account page and the broadcast page show: today's cap (and why), used, left."""
    now = clock()
    today, used = cap_today(account, now), used_today(account, now)
    warming = account.broadcast_warmup and today < account.broadcast_daily_cap
    return {"cap": account.broadcast_daily_cap, "today": today, "used": used, "left": max(0, today - used),
            "warming": warming, "warmup_day": warmup_day(account, now) if warming else None,
            "resets_at": next_day_start(account, now)}
