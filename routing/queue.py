"""The fair queue seen from outside: who gets a waiting conversation when capacity frees (the
subscribers call these after the commit of a resolve, a reassignment, a member coming online,
capacity raised, a member added to a team), the minute sweep that catches up on anything a
lost worker left, and what the inbox and routing page show. The locking itself is in
routing.services (waiting_assign, team_drain)."""
import logging
from dataclasses import dataclass

from django.utils import timezone

from routing.models import Team, WaitingConversation
from routing.services import OPEN_STATES, team_drain

logger = logging.getLogger(__name__)


def member_drain(*, location_id: int, user_id: int) -> int:
    """A member may have room now: each of their teams in the location gives its oldest waiting
    conversations to whoever has room (one team at a time, each in its own transaction)."""
    team_ids = Team.objects.filter(location_id=location_id, members=user_id, waiting__isnull=False).distinct()
    return sum(team_drain(pk) for pk in sorted(team_ids.values_list("pk", flat=True)))


def teams_drain(team_ids) -> int:
    return sum(team_drain(pk) for pk in sorted(set(team_ids)))


def drain_quietly(func, **kwargs) -> None:
    """After a commit: a failure must not turn the user's finished change into an error page;
    the minute sweep assigns what is left."""
    try:
        func(**kwargs)
    except Exception:
        logger.exception("fair queue: %s(%s) failed; the minute sweep will catch up", func.__name__, kwargs)


def queue_sweep() -> int:
    """Every minute: teams with waiting conversations are drained (a worker that died between a
    commit that freed capacity and its drain left them waiting)."""
    return teams_drain(WaitingConversation.objects.values_list("team_id", flat=True).distinct())


@dataclass
class TeamQueue:
    team: Team
    entries: list[WaitingConversation]

    @property
    def oldest(self):
        return self.entries[0].since if self.entries else None


@dataclass
class WaitingView:
    teams: list[TeamQueue]
    count: int
    oldest: object  # datetime or None
    now: object


def waiting_for(location) -> WaitingView:
    """What waits in the location's queues, per team, oldest first (snoozed ones are not shown:
    they wait for their time, then take their place again)."""
    entries = list(
        WaitingConversation.objects.filter(location=location, conversation__status__in=OPEN_STATES)
        .select_related("team", "conversation__contact", "conversation__account")
        .order_by("team__name", "since", "id")
    )
    teams: dict[int, TeamQueue] = {}
    for entry in entries:
        teams.setdefault(entry.team_id, TeamQueue(entry.team, [])).entries.append(entry)
    oldest = min((e.since for e in entries), default=None)
    return WaitingView(list(teams.values()), len(entries), oldest, timezone.now())
