"""{{ m|withdrawn_reason }}: why a message was withdrawn from its queue before it was sent
("" for any other message), so the thread shows it as withdrawn, without Retry."""
from django import template

from conversations.sending import WITHDRAWN, is_withdrawn

register = template.Library()


@register.filter
def withdrawn_reason(message) -> str:
    return message.error[len(WITHDRAWN):] if is_withdrawn(message) else ""
