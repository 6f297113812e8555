"""Daily message counts for reports, rolled up in the background (the sweeper, every minute).

Each location has a watermark: MessageDayCount rows count exactly the messages with
id <= watermark. A refresh picks a new watermark W (the newest message older than
SETTLE_SECONDS, so a transaction still open with a lower id cannot be skipped), finds the
local days that messages in (old, W] fall on, and recounts those days from the messages table
(id <= W). Reports add the messages above the watermark, counted live, so a report is exact
at any moment. A change of the location's time zone rebuilds everything."""
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Count, Max
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Location
from conversations.models import Message, MessageDayCount, ReportRollupState

SETTLE_SECONDS = 300


def rollup_refresh(location, *, settle_seconds: float = SETTLE_SECONDS) -> int:
    """Bring one location's rollups up to date; returns how many days were recounted."""
    tz_name = location.timezone or "UTC"
    tz = ZoneInfo(tz_name)
    with transaction.atomic():
        state, _ = ReportRollupState.objects.select_for_update().get_or_create(location=location, defaults={"tz": tz_name})
        if state.tz != tz_name:  # days were cut in another zone
            MessageDayCount.objects.filter(location=location).delete()
            state.watermark, state.tz = 0, tz_name
        cutoff = timezone.now() - timezone.timedelta(seconds=settle_seconds)
        new_mark = Message.objects.filter(location=location, created_at__lt=cutoff).aggregate(m=Max("id"))["m"] or 0
        if new_mark <= state.watermark:
            state.save(update_fields=["watermark", "tz"])
            return 0
        fresh = Message.objects.filter(location=location, is_note=False, id__gt=state.watermark, id__lte=new_mark)
        days = sorted(set(fresh.annotate(day=TruncDate("sent_at", tzinfo=tz)).values_list("day", flat=True).distinct()))
        for day in days:  # each day through the (location, sent_at) index, never the whole table
            since = datetime.combine(day, time.min, tz)
            until = datetime.combine(day + timedelta(days=1), time.min, tz)
            MessageDayCount.objects.filter(location=location, day=day).delete()
            counted = (
                Message.objects.filter(location=location, is_note=False, id__lte=new_mark, sent_at__gte=since, sent_at__lt=until)
                .values("account_id", "direction", "author_id").annotate(n=Count("id"))
            )
            MessageDayCount.objects.bulk_create(
                [MessageDayCount(location=location, account_id=r["account_id"], day=day, direction=r["direction"],
                                 author_id=r["author_id"], n=r["n"]) for r in counted],
                batch_size=1000,
            )
        state.watermark, state.refreshed_at = new_mark, timezone.now()
        state.save()
        return len(days)


def rollup_refresh_all() -> int:
    return sum(rollup_refresh(location) for location in Location.objects.all())


def watermark_of(location) -> tuple[int, str]:
    state = ReportRollupState.objects.filter(location=location).values_list("watermark", "tz").first()
    return state or (0, "")
