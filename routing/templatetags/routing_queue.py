from django import template

from routing.queue import waiting_for

register = template.Library()


@register.simple_tag(takes_context=True)
def waiting_queue(context):
    """The location's waiting queue (routing.queue.waiting_for) for templates/routing/_waiting.html."""
    location = getattr(context.get("request"), "location", None)
    return waiting_for(location) if location is not None else None


@register.filter
def waited(since, now):
    """How long a conversation has waited, as people say it: "under a minute", "3 min", "1 h 5 min"."""
    if not since or not now:
        return ""
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return f"{hours // 24} days"
