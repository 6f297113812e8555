"""Merge fields: `{{first_name}}` and friends in templates, broadcasts and scheduled messages
(issue 18). One syntax everywhere:

    Hi {{first_name|there}}, your order with {{account}} is ready.

A field may carry a fallback after `|`, used when the contact has no such value ("there" for a
contact whose name is unknown). Unknown fields are refused when the text is saved
(`merge_fields_check`), so a typo never reaches a customer as "{{frist_name}}".
"""
import re
from dataclasses import dataclass

from whatsnap.errors import ApplicationError

FIELD = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:\|([^{}]*))?\}\}")

FIELDS = {
    "first_name": "the contact's first name",
    "last_name": "the contact's last name (everything after the first word)",
    "name": "the contact's full name",
    "phone": "the contact's phone number",
    "account": "the name of the account the message leaves through",
    "agent": "the name of the person sending it",
}


@dataclass(frozen=True)
class MergeContext:
    """What a text is merged with. Any part may be missing (a template previewed with no
    contact shows each field's fallback)."""
    contact: object = None
    account: object = None
    agent: object = None


def merge_fields_used(text: str) -> list[str]:
    return [m.group(1) for m in FIELD.finditer(text or "")]


def merge_fields_check(text: str, *, field: str = "text") -> None:
    """Refuse a text naming a field we do not have, or with an unclosed `{{`."""
    unknown = sorted({name for name in merge_fields_used(text) if name not in FIELDS})
    if unknown:
        names = ", ".join("{{" + n + "}}" for n in unknown)
        raise ApplicationError(
            f"Unknown merge field {names}. Use one of: " + ", ".join("{{" + n + "}}" for n in FIELDS) + ".", field=field)
    leftover = FIELD.sub("", text or "")
    if "{{" in leftover or "}}" in leftover:
        raise ApplicationError("A merge field is not closed: write it as {{first_name}} (or {{first_name|there}}).", field=field)


def _values(ctx: MergeContext) -> dict[str, str]:
    contact, account, agent = ctx.contact, ctx.account, ctx.agent
    name = (getattr(contact, "name", "") or "").strip() if contact is not None else ""
    first, _, last = name.partition(" ")
    phone = ""
    if contact is not None and not getattr(contact, "number_unknown", False):
        phone = contact.phone
    agent_name = ""
    if agent is not None:
        agent_name = (agent.get_full_name() or agent.get_username()) if hasattr(agent, "get_full_name") else str(agent)
    return {
        "first_name": first,
        "last_name": last.strip(),
        "name": name,
        "phone": phone,
        "account": getattr(account, "name", "") if account is not None else "",
        "agent": agent_name,
    }


def merge_fields_render(text: str, ctx: MergeContext) -> str:
    """The text with each field replaced by its value, else its fallback, else nothing (and
    the spaces a missing value leaves before punctuation tidied: "Hi {{first_name}}," with no
    name reads "Hi,")."""
    if not text or "{{" not in text:
        return text or ""
    values = _values(ctx)

    def one(match):
        value = values.get(match.group(1), "")
        return value if value else (match.group(2) or "").strip()

    merged = FIELD.sub(one, text)
    merged = re.sub(r"[ \t]+([,.!?;:])", r"\1", merged)
    return re.sub(r"[ \t]{2,}", " ", merged)
