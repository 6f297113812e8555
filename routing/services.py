"""Routing: which rule matches a conversation, and who gets it.

route_decide() is pure reading and returns a Decision that explains itself (used by the dry-run
page); conversation_route() applies it inside the inbound transaction (routing subscribes to
"message.received"). Capacity and
round-robin hold under concurrency: the candidates' membership rows (and the team row) are
locked in a fixed order before open conversations are counted, so two workers assigning at
the same moment are serialised.

The fair queue: when every member of the chosen team is at capacity, away or offline, the
conversation waits (WaitingConversation), oldest first per team. waiting_assign() gives waiting
conversations to members with room under the same locks (team, then members); routing.queue
calls it when capacity frees, and a conversation routed to a team that already has a queue
waits behind it."""
import time
from dataclasses import dataclass, field
from functools import partial

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.timesince import timesince

from accounts.hours import is_within_hours
from accounts.models import Membership
from contacts.models import Contact
from conversations.actions import conversation_assign
from conversations.models import Conversation
from routing.models import RoutingRule, Team, WaitingConversation

OPEN_STATES = (Conversation.Status.OPEN, Conversation.Status.PENDING)


@dataclass
class Decision:
    rule: RoutingRule | None = None
    assignee_id: int | None = None
    team: Team | None = None  # the team the conversation went to (a rule's or the account's default)
    waiting_team: Team | None = None  # nobody had room: the conversation waits in this team's queue
    trace: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.trace.append(text)


def rule_matches(rule: RoutingRule, *, account, tag_ids: set[int], at) -> tuple[bool, str]:
    if rule.account_id and rule.account_id != account.pk:
        return False, f"account is {account.name}, rule wants another account"
    if rule.platform and rule.platform != account.kind:
        return False, f"platform is {account.kind}, rule wants {rule.platform}"
    wanted = {t.pk for t in rule.tags.all()}
    if wanted:
        hit = wanted & tag_ids
        if rule.tag_mode == RoutingRule.TagMode.ALL and hit != wanted:
            return False, "contact lacks some of the rule's tags"
        if rule.tag_mode == RoutingRule.TagMode.ANY and not hit:
            return False, "contact has none of the rule's tags"
    if rule.hours != RoutingRule.Hours.ALWAYS:
        within = is_within_hours(account, at)
        if within != (rule.hours == RoutingRule.Hours.WITHIN):
            return False, f"it is {'within' if within else 'outside'} business hours"
    return True, "all conditions hold"


def _open_counts(location_id: int, user_ids) -> dict[int, int]:
    rows = (
        Conversation.objects.filter(location_id=location_id, assignee_id__in=user_ids, status__in=OPEN_STATES)
        .values("assignee_id")
        .annotate(n=Count("id"))
    )
    return {r["assignee_id"]: r["n"] for r in rows}


def _eligible(location_id: int, user_ids, *, lock: bool) -> list[Membership]:
    """Members who are online and under capacity, in user id order (locked when applying)."""
    qs = Membership.objects.filter(location_id=location_id, user_id__in=user_ids).order_by("user_id")
    if lock:
        qs = qs.select_for_update()
    members = list(qs)
    counts = _open_counts(location_id, [m.user_id for m in members])
    return [m for m in members if m.availability == Membership.Availability.ONLINE and counts.get(m.user_id, 0) < m.capacity]


def _pick_from_team(team: Team, *, contact, decision: Decision, lock: bool) -> int | None:
    if lock:
        team = Team.objects.select_for_update().get(pk=team.pk)
    decision.team = team
    member_ids = list(team.members.values_list("id", flat=True))
    eligible = _eligible(team.location_id, member_ids, lock=lock)
    if not eligible:
        queued = WaitingConversation.objects.filter(team=team)
        ahead = (queued.exclude(conversation__contact=contact.pk) if contact.pk else queued).count()
        decision.note(f"team {team.name}: nobody online with free capacity; waits in the team's queue"
                      + (f" behind {ahead}" if ahead else ""))
        decision.waiting_team = team
        return None
    ids = [m.user_id for m in eligible]
    if team.sticky and contact.assignee_id in ids:
        decision.note(f"team {team.name}: sticky, back to the contact's previous owner")
        return contact.assignee_id
    if team.strategy == Team.Strategy.LEAST_OPEN:
        counts = _open_counts(team.location_id, ids)
        chosen = min(ids, key=lambda uid: (counts.get(uid, 0), uid))
        decision.note(f"team {team.name}: fewest open conversations ({counts.get(chosen, 0)})")
    else:
        after = [uid for uid in ids if team.last_assigned_id is not None and uid > team.last_assigned_id]
        chosen = (after or ids)[0]
        decision.note(f"team {team.name}: next in rotation")
        if lock:
            Team.objects.filter(pk=team.pk).update(last_assigned_id=chosen)
    return chosen


def _pick_user(location_id: int, user_id: int, *, decision: Decision, lock: bool) -> int | None:
    if _eligible(location_id, [user_id], lock=lock):
        return user_id
    decision.note("that member is away, offline or at capacity; left unassigned")
    return None


def route_decide(*, account, contact, at=None, lock: bool = False, extra_tag_ids=()) -> Decision:
    """extra_tag_ids: tags the contact is about to get (the dry run of a first message)."""
    at = at or timezone.now()
    decision = Decision()
    tag_ids = set(contact.tags.values_list("id", flat=True)) if contact.pk else set()
    tag_ids |= set(extra_tag_ids)
    rules = RoutingRule.objects.filter(location_id=account.location_id, enabled=True).prefetch_related("tags")
    for rule in rules.select_related("target_team", "target_user"):
        matched, why = rule_matches(rule, account=account, tag_ids=tag_ids, at=at)
        decision.note(f"rule “{rule.name}”: {'matches' if matched else 'skipped'} ({why})")
        if not matched:
            continue
        decision.rule = rule
        if rule.target == RoutingRule.Target.USER:
            decision.assignee_id = _pick_user(account.location_id, rule.target_user_id, decision=decision, lock=lock)
        elif rule.target == RoutingRule.Target.TEAM:
            decision.assignee_id = _pick_from_team(rule.target_team, contact=contact, decision=decision, lock=lock)
        else:
            decision.note("rule leaves the conversation unassigned")
        return decision
    if account.default_assignee_id:
        decision.note("no rule matched; the account's default assignee")
        decision.assignee_id = _pick_user(account.location_id, account.default_assignee_id, decision=decision, lock=lock)
    if decision.assignee_id is None and account.default_team_id:
        decision.note("no rule matched; the account's default team")
        decision.assignee_id = _pick_from_team(account.default_team, contact=contact, decision=decision, lock=lock)
    if not (account.default_assignee_id or account.default_team_id):
        decision.note("no rule matched and the account has no default assignee or team; left unassigned")
    return decision


def conversations_route(*, conversations: list[Conversation]) -> None:
    """conversation_route for each, in order; a location with nothing to route by (no enabled
    rule, no account default) only takes them out of any team queue, in one statement."""
    first = conversations[0]
    accounts = {c.account_id: c.account for c in conversations}
    routes = any(a.default_assignee_id or a.default_team_id for a in accounts.values()) or \
        RoutingRule.objects.filter(location_id=first.location_id, enabled=True).exists()
    if not routes:
        WaitingConversation.objects.filter(conversation_id__in=sorted(c.pk for c in conversations)).delete()
        return
    for conversation in conversations:
        conversation_route(conversation=conversation)


def conversation_route(*, conversation: Conversation) -> bool:
    """Assign an unassigned conversation by the rules, or let it wait in its team's queue.
    Must run inside a transaction."""
    if conversation.assignee_id:
        return False
    decision = route_decide(account=conversation.account, contact=conversation.contact, lock=True)
    team = decision.team
    if team is not None and (decision.waiting_team or _others_waiting(team, conversation)):
        # nobody has room, or older conversations wait for this team: it queues behind them, and
        # whoever has room takes the oldest first (the team and members are locked already)
        _wait(conversation, team)
        if waiting_assign(team, current=conversation)[1]:
            transaction.on_commit(partial(team_drain, team.pk))  # one it had to skip may have room now
        return conversation.assignee_id is not None
    WaitingConversation.objects.filter(conversation_id=conversation.pk).delete()
    if decision.assignee_id is None:
        return False
    assignee = get_user_model().objects.get(pk=decision.assignee_id)
    reason = f"rule {decision.rule.name}" if decision.rule else "account default"
    conversation_assign(conversation=conversation, assignee=assignee, reason=reason)
    conversation.contact.assignee_id = assignee.pk
    return True


def _others_waiting(team: Team, conversation: Conversation) -> bool:
    return WaitingConversation.objects.filter(team=team).exclude(conversation_id=conversation.pk).exists()


def _wait(conversation: Conversation, team: Team) -> None:
    """Join the team's queue, or move to it keeping the time it started waiting."""
    WaitingConversation.objects.update_or_create(
        conversation_id=conversation.pk, defaults={"team": team, "location_id": conversation.location_id})


def _lock_waiting(entry: WaitingConversation, current: Conversation | None) -> tuple[Conversation | None, bool]:
    """The waiting conversation's row, locked; (None, True) when another transaction holds it
    (it may hold it while waiting for the team's lock, so it is skipped, never waited for)."""
    row = Conversation.objects.select_for_update(skip_locked=True, of=("self",)).filter(pk=entry.conversation_id).first()
    if row is None:
        return None, Conversation.objects.filter(pk=entry.conversation_id).exists()
    if current is not None and current.pk == row.pk:
        current.status = row.status
        return current, False
    return row, False


def waiting_assign(team: Team, *, current: Conversation | None = None) -> tuple[int, int]:
    """Give the team's waiting conversations, oldest first, to members with room, under the
    team's and then the members' row locks (as route_decide takes them). Call inside a
    transaction. `current`: the conversation being filed, passed so that its object learns its
    assignee. Returns (assigned, skipped: rows another transaction held)."""
    team = Team.objects.select_for_update().get(pk=team.pk)
    member_ids = list(team.members.values_list("id", flat=True))
    assigned = skipped = 0
    for entry in list(WaitingConversation.objects.filter(team=team).order_by("since", "id")):
        if not _eligible(team.location_id, member_ids, lock=True):
            break
        conversation, held = _lock_waiting(entry, current)
        if conversation is None:
            skipped += held
            continue
        if conversation.assignee_id or conversation.status == Conversation.Status.RESOLVED:
            entry.delete()
            continue
        if conversation.status not in OPEN_STATES:
            continue  # snoozed: it keeps its place and is taken once it wakes
        contact = Contact.objects.select_for_update(skip_locked=True).filter(pk=conversation.contact_id).first()
        if contact is None:
            skipped += 1
            continue
        chosen = _pick_from_team(team, contact=contact, decision=Decision(), lock=True)
        if chosen is None:
            break
        waited = timesince(entry.since, timezone.now(), depth=1)
        conversation_assign(conversation=conversation, assignee=get_user_model().objects.get(pk=chosen),
                            reason=f"waited {waited} in team {team.name}'s queue")
        entry.delete()
        if current is not None and conversation is current:
            current.contact.assignee_id = chosen
        assigned += 1
    return assigned, skipped


def team_drain(team_id: int, *, attempts: int = 6) -> int:
    """Assign what waits for the team while its members have room, each pass in its own
    transaction; a pass that had to skip a conversation another transaction held is tried again
    shortly (the minute sweep is the last resort). Returns how many were assigned."""
    total = 0
    for attempt in range(attempts):
        with transaction.atomic():
            team = Team.objects.filter(pk=team_id).first()
            if team is None:
                return total
            assigned, skipped = waiting_assign(team)
        total += assigned
        if not skipped:
            break
        time.sleep(0.02 * (attempt + 1))
    return total
