"""The composer's attachment limits for every account its "via" choice offers (no query: the
contact panel has those accounts loaded already)."""
from django import template

from conversations.uploads import limits_json

register = template.Library()


@register.filter
def with_accounts(limits: dict, accounts) -> dict:
    """`limits` (the conversation's account and private notes) plus those of `accounts`."""
    return {**limits_json(accounts or ()), **(limits if isinstance(limits, dict) else {})}
