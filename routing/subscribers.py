"""How routing reacts to domain events (registered in RoutingConfig.ready)."""
from contacts.models import Tag
from routing import services
from routing.models import RoutingRule
from whatsnap import events
from whatsnap.errors import ApplicationError


@events.on("message.received")
def route_new_message(event) -> None:
    """An unassigned conversation that just got a message is assigned by the rules, inside the
    filing transaction (the candidates' rows stay locked until it commits)."""
    services.conversation_route(conversation=event["conversation"])


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
