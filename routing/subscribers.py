"""How routing reacts to domain events (registered in RoutingConfig.ready)."""
from contacts.models import Tag
from conversations.models import Conversation
from routing import queue, services
from routing.models import RoutingRule, WaitingConversation
from whatsnap import events
from whatsnap.errors import ApplicationError


@events.on_many("message.received")
def route_new_message(batch) -> None:
    """An unassigned conversation that just got a message is assigned by the rules, inside the
    filing transaction (the candidates' rows stay locked until it commits); once per
    conversation however many of its messages a batch filed."""
    conversations = list({id(c): c for c in (e["conversation"] for e in batch) if not c.assignee_id}.values())
    if conversations:
        services.conversations_route(conversations=conversations)


# --- the fair queue: leaving it, and capacity that frees -------------------------------------
@events.on("conversation.assigned")
def leave_queue_when_assigned(event) -> None:
    """Assigned (by hand, the API or the queue itself): it no longer waits."""
    if event["assignee"] is not None:
        WaitingConversation.objects.filter(conversation_id=event["conversation"].pk).delete()


@events.on("conversation.assigned", on_commit=True)
def drain_when_reassigned(event) -> None:
    """Its previous assignee has one conversation fewer: the oldest waiting one may be theirs."""
    if event["previous_assignee_id"]:
        queue.drain_quietly(queue.member_drain, location_id=event.location_id, user_id=event["previous_assignee_id"])


@events.on("conversation.status_changed")
def leave_queue_when_resolved(event) -> None:
    if event["status"] == Conversation.Status.RESOLVED:
        WaitingConversation.objects.filter(conversation_id=event["conversation"].pk).delete()


@events.on("conversation.status_changed", on_commit=True)
def drain_when_status_frees(event) -> None:
    """Resolved or snoozed, an open conversation stops counting against its assignee's capacity;
    a waiting conversation that wakes from a snooze may be taken at once."""
    conversation = event["conversation"]
    freed = event["previous"] in services.OPEN_STATES and event["status"] not in services.OPEN_STATES
    if freed and conversation.assignee_id:
        queue.drain_quietly(queue.member_drain, location_id=event.location_id, user_id=conversation.assignee_id)
    elif event["status"] in services.OPEN_STATES and not conversation.assignee_id:
        team_ids = WaitingConversation.objects.filter(conversation_id=conversation.pk).values_list("team_id", flat=True)
        queue.drain_quietly(queue.teams_drain, team_ids=list(team_ids))


@events.on("member.changed", on_commit=True)
def drain_when_member_changed(event) -> None:
    """Online again, or capacity raised: the member may take waiting conversations."""
    membership = event["membership"]
    queue.drain_quietly(queue.member_drain, location_id=event.location_id, user_id=membership.user_id)


def _rules_using(tag: Tag) -> list[RoutingRule]:
    return list(RoutingRule.objects.filter(location_id=tag.location_id, tags=tag).order_by("position", "id"))


@events.on("tag.merging")
def follow_merged_tag(event) -> None:
    """Rules on a merged-away tag now look for the tag it became."""
    for rule in _rules_using(event["source"]):
        rule.tags.add(event["into"])


@events.on("tag.deleting")
def refuse_deleting_a_rule_tag(event) -> None:
    """A rule that lost its only tag condition would match every conversation."""
    tag = event["tag"]
    rules = _rules_using(tag)
    if rules:
        names = ", ".join(f"“{r.name}”" for r in rules)
        raise ApplicationError(f"{tag.name} is a condition of the routing rule(s) {names}; take it out of them (or merge it into another tag) first.")
