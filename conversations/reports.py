"""Reports per location or account for a period, in the location's time zone.

Counting and the per-conversation durations run in SQL (first inbound, first reply and first
resolution are kept on each conversation as they happen, so no per-conversation lookups). On
PostgreSQL one query over the period's conversations gives the count, both percentile pairs
and every agent's median (percentile_cont with GROUPING SETS); on SQLite the durations (one
per conversation, never per message) are ranked in Python."""
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, DurationField, ExpressionWrapper, F, Sum
from django.db.models.functions import TruncDate

from contacts.models import Contact, ContactAccount
from conversations.models import Conversation, ConversationEvent, Message, MessageDayCount
from conversations.rollups import watermark_of


@dataclass
class Report:
    start: date
    end: date  # inclusive
    messages_in: int = 0
    messages_out: int = 0
    new_contacts: int = 0
    conversations_opened: int = 0
    conversations_resolved: int = 0
    first_response: dict = field(default_factory=dict)  # {"median": seconds|None, "p90": ...}
    resolution: dict = field(default_factory=dict)
    daily: list = field(default_factory=list)  # [(date, in, out)]
    # [{"agent", "conversations" (opened in the period, assigned to them), "messages_out", "resolved",
    #   "first_response_median"/"_p90", "resolution_median"/"_p90"}]
    agents: list = field(default_factory=list)


def _bounds(start: date, end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    return datetime.combine(start, time.min, tz), datetime.combine(end + timedelta(days=1), time.min, tz)


def _durations(opened) -> tuple[int, dict, dict, dict]:
    """One pass over the period's opened conversations: how many, the first-response and
    resolution percentiles, and the same per assignee.

    Returns (opened, first_response, resolution, {assignee username: {"conversations",
    "first_response", "resolution"}})."""
    rows = opened.annotate(
        wait=ExpressionWrapper(F("first_response_at") - F("first_inbound_at"), output_field=DurationField()),
        took=ExpressionWrapper(F("first_resolved_at") - F("created_at"), output_field=DurationField()),
    ).values_list("assignee_id", "wait", "took")
    if connection.vendor == "postgresql":
        sql, params = rows.query.sql_with_params()
        # ordered-set aggregates skip NULLs; GROUPING SETS gives the totals and the per-agent
        # rows from the same scan
        # one sort per column gives both quantiles (percentile_cont over an array of fractions)
        pc = "percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM {col}))"
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '64MB'")  # the sorts of 100k+ durations stay in memory
            cursor.execute(
                f"SELECT GROUPING(agent), agent, count(*), {pc.format(col='wait')}, count(wait), {pc.format(col='took')}, count(took)"
                f" FROM ({sql}) AS t(agent, wait, took) GROUP BY GROUPING SETS ((), (agent))",
                params,
            )

            def pair(values, n):
                median, p90 = values or (None, None)
                return {"median": median, "p90": p90, "n": n}

            result = [(r[0], r[1], r[2], pair(r[3], r[4]), pair(r[5], r[6])) for r in cursor.fetchall()]
    else:
        groups: dict = {}
        for agent, wait, took in rows:
            for key in (("total",), ("agent", agent)):
                g = groups.setdefault(key, [0, [], []])
                g[0] += 1
                if wait is not None:
                    g[1].append(wait.total_seconds())
                if took is not None:
                    g[2].append(took.total_seconds())
        groups.setdefault(("total",), [0, [], []])
        result = [(1 if key == ("total",) else 0, None if key == ("total",) else key[1], n, _summary(w), _summary(t))
                  for key, (n, w, t) in groups.items()]
    total = next(r for r in result if r[0] == 1)
    names = dict(get_user_model().objects.filter(pk__in=[r[1] for r in result if r[1] is not None]).values_list("pk", "username"))
    per_agent = {names[r[1]]: {"conversations": r[2], "first_response": r[3], "resolution": r[4]}
                 for r in result if r[0] == 0 and r[1] in names}
    return total[2], total[3], total[4], per_agent


def _summary(values: list[float]) -> dict:
    if not values:
        return {"median": None, "p90": None, "n": 0}
    values.sort()
    return {"median": statistics.median(values), "p90": _interpolate(values, 0.9), "n": len(values)}


def _interpolate(values: list[float], q: float) -> float:
    """The same definition as PostgreSQL's percentile_cont."""
    pos = q * (len(values) - 1)
    low = int(pos)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (pos - low)


def _add(per_day: dict, by_author: dict, day, direction: str, author, n: int) -> None:
    row = per_day.setdefault(day, {"i": 0, "o": 0})
    row["i" if direction == "inbound" else "o"] += n
    if direction == "outbound" and author:
        by_author[author] = by_author.get(author, 0) + n


def report_build(*, location, start: date, end: date, account=None) -> Report:
    tz = ZoneInfo(location.timezone or "UTC")
    since, until = _bounds(start, end, tz)
    messages = Message.objects.filter(location=location, is_note=False, sent_at__gte=since, sent_at__lt=until)
    conversations = Conversation.objects.filter(location=location)
    if account is not None:
        messages = messages.filter(account=account)
        conversations = conversations.filter(account=account)
    report = Report(start=start, end=end)
    if account is None:
        report.new_contacts = Contact.objects.filter(location=location, kind="person", created_at__gte=since, created_at__lt=until).count()
    else:
        report.new_contacts = ContactAccount.objects.filter(account=account, first_seen_at__gte=since, first_seen_at__lt=until).count()
    opened = conversations.filter(created_at__gte=since, created_at__lt=until)
    resolved_events = ConversationEvent.objects.filter(conversation__in=conversations, kind="status", to_value="resolved",
                                                      at__gte=since, at__lt=until)
    report.conversations_resolved = resolved_events.values("conversation_id").distinct().count()

    # first inbound / first reply / first resolution are kept on the conversation as they happen
    report.conversations_opened, report.first_response, report.resolution, agent_stats = _durations(opened)

    # Daily counts: the rolled-up days (messages up to the watermark) plus the newer messages
    # counted live; see conversations/rollups.py.
    mark, rolled_tz = watermark_of(location)
    if rolled_tz != (location.timezone or "UTC"):
        mark = 0  # rolled up in another zone: count everything live until the next refresh
    per_day: dict = {}
    by_author: dict = {}
    if mark:
        rolled = MessageDayCount.objects.filter(location=location, day__gte=start, day__lte=end)
        if account is not None:
            rolled = rolled.filter(account=account)
        for row in rolled.values("day", "direction", "author__username").annotate(n=Sum("n")):
            _add(per_day, by_author, row["day"], row["direction"], row["author__username"], row["n"])
    live = messages.filter(id__gt=mark).annotate(day=TruncDate("sent_at", tzinfo=tz))
    for row in live.values("day", "direction", "author__username").annotate(n=Count("id")):
        _add(per_day, by_author, row["day"], row["direction"], row["author__username"], row["n"])
    report.messages_in = sum(row["i"] for row in per_day.values())
    report.messages_out = sum(row["o"] for row in per_day.values())
    day = start
    while day <= end:
        row = per_day.get(day, {"i": 0, "o": 0})
        report.daily.append((day, row["i"], row["o"]))
        day += timedelta(days=1)

    out_by_agent = by_author
    resolved_by = dict(resolved_events.filter(actor__isnull=False).values_list("actor__username").annotate(n=Count("conversation", distinct=True)))
    empty = {"conversations": 0, "first_response": {"median": None, "p90": None}, "resolution": {"median": None, "p90": None}}
    for agent in sorted(set(out_by_agent) | set(resolved_by) | set(agent_stats)):
        stats = agent_stats.get(agent, empty)
        report.agents.append({
            "agent": agent, "conversations": stats["conversations"], "messages_out": out_by_agent.get(agent, 0),
            "resolved": resolved_by.get(agent, 0),
            "first_response_median": stats["first_response"]["median"], "first_response_p90": stats["first_response"]["p90"],
            "resolution_median": stats["resolution"]["median"], "resolution_p90": stats["resolution"]["p90"],
        })
    return report


def daily_svg(report: Report, width: int = 640, height: int = 180) -> str:
    """A small grouped bar chart (in = dark, out = light), rendered on the server."""
    days = report.daily
    top = max([max(i, o) for _d, i, o in days] + [1])
    pad, bar_area = 24, height - 40
    slot = (width - 2 * pad) / max(len(days), 1)
    bars = []
    for n, (day, i, o) in enumerate(days):
        x = pad + n * slot
        for k, (value, colour) in enumerate(((i, "#0b7a5a"), (o, "#8fd3b8"))):
            h = bar_area * value / top
            bars.append(f'<rect x="{x + k * slot / 2.4:.1f}" y="{height - 20 - h:.1f}" width="{slot / 2.6:.1f}" height="{h:.1f}" '
                        f'fill="{colour}"><title>{day:%b %d}: {value} {"in" if k == 0 else "out"}</title></rect>')
        if len(days) <= 31 and (n % max(1, len(days) // 8) == 0):
            bars.append(f'<text x="{x:.1f}" y="{height - 5}" font-size="10" fill="#677086">{day:%b %d}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
            f'aria-label="Messages per day"><text x="{pad}" y="12" font-size="11" fill="#677086">max {top}/day</text>{"".join(bars)}</svg>')
