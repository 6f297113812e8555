from django import template

from routing.queue import waiting_for

register = template.Library()


@register.simple_tag(takes_context=True)
def waiting_queue(context):
    """The location's waiting queue (routing.queue.waiting_for) for templates/routing/_waiting.html."""
    location = getattr(context.get("request"), "location", None)
    return waiting_for(location) if location is not None else None
