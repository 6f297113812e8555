"""Message templates (issue 18, point 5): location-wide texts with merge fields that every agent
uses from the composer (type `/`) and broadcasts pick. Admins manage them (the Templates page,
the Django admin, the API with an admin token); everyone reads them.

For other apps: `templates_for(location)` lists them, `template_render(template, ...)` fills in
the merge fields for one contact."""
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from conversations.merge_fields import MergeContext, merge_fields_check, merge_fields_render
from conversations.models import MessageTemplate
from whatsnap.errors import ApplicationError

NAME_MAX = 100
BODY_MAX = 4000


def templates_for(location):
    """The location's templates, by name (what the composer's picker and broadcasts offer)."""
    return MessageTemplate.objects.filter(location=location).order_by("name", "id")


def template_render(template: MessageTemplate, *, contact=None, account=None, agent=None) -> str:
    """The template's text for one contact: merge fields filled in (fallbacks where unknown)."""
    return merge_fields_render(template.body, MergeContext(contact=contact, account=account, agent=agent))


def _clean(*, location, name: str, body: str, shortcut: str, instance: MessageTemplate | None = None) -> tuple[str, str, str]:
    name, body, shortcut = (name or "").strip(), (body or "").strip(), (shortcut or "").strip().lstrip("/")
    if not name:
        raise ApplicationError("Give the template a name.", field="name")
    if len(name) > NAME_MAX:
        raise ApplicationError(f"Keep the name to {NAME_MAX} characters.", field="name")
    if not body:
        raise ApplicationError("Write the template's text.", field="body")
    if len(body) > BODY_MAX:
        raise ApplicationError(f"Keep the text to {BODY_MAX} characters.", field="body")
    merge_fields_check(body, field="body")
    if shortcut and (slugify(shortcut) != shortcut.lower() or len(shortcut) > 40):
        raise ApplicationError("A shortcut is one word of letters, digits, - or _ (up to 40), e.g. thanks or opening-hours.",
                               field="shortcut")
    others = templates_for(location).exclude(pk=instance.pk if instance else None)
    if others.filter(name__iexact=name).exists():
        raise ApplicationError(f"A template named “{name}” exists already.", field="name", code="duplicate")
    if shortcut and others.filter(shortcut__iexact=shortcut).exists():
        raise ApplicationError(f"Another template uses the shortcut /{shortcut}.", field="shortcut", code="duplicate")
    return name, body, shortcut.lower()


def _saved(template: MessageTemplate) -> MessageTemplate:
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError:  # a concurrent save took the name or shortcut between the check and now
        raise ApplicationError("Another template with this name or shortcut was just saved; pick another.",
                               field="name", code="duplicate") from None
    return template


def template_create(*, location, name: str, body: str, shortcut: str = "", created_by=None) -> MessageTemplate:
    name, body, shortcut = _clean(location=location, name=name, body=body, shortcut=shortcut)
    return _saved(MessageTemplate(location=location, name=name, body=body, shortcut=shortcut, created_by=created_by))


def template_update(*, template: MessageTemplate, name: str | None = None, body: str | None = None,
                    shortcut: str | None = None) -> MessageTemplate:
    """Change what is given (None keeps a field)."""
    name, body, shortcut = _clean(
        location=template.location_id, instance=template,
        name=template.name if name is None else name,
        body=template.body if body is None else body,
        shortcut=template.shortcut if shortcut is None else shortcut,
    )
    template.name, template.body, template.shortcut, template.updated_at = name, body, shortcut, timezone.now()
    return _saved(template)


def template_delete(*, template: MessageTemplate) -> None:
    template.delete()
