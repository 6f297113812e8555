"""What the inbox's composer shows besides the text box: the `/` picker's templates (filled in
for this conversation's contact, account and the agent) and the scheduled replies with their
time zone and the account's next business hours."""
from django.utils import timezone

from accounts.hours import next_open, parse_hours
from accounts.models import Membership
from accounts.providers.media import size_label
from conversations.merge_fields import MergeContext, merge_fields_render
from conversations.message_templates import template_render, templates_for
from conversations.models import Conversation
from conversations.scheduling import can_change, scheduled_for, zone_for
from conversations.uploads import limits_for, limits_json, pending_uploads
from whatsnap.errors import ApplicationError


def is_admin(request) -> bool:
    return request.membership is not None and request.membership.role == Membership.Role.ADMIN


def picker_templates(conversation: Conversation, agent) -> list[dict]:
    """The templates as the picker inserts them: merge fields already filled in."""
    return [
        {"id": t.pk, "name": t.name, "shortcut": t.shortcut,
         "text": template_render(t, contact=conversation.contact, account=conversation.account, agent=agent)}
        for t in templates_for(conversation.location_id)
    ]


def business_hours_hint(account) -> dict:
    """For the 'at the next business hours' choice: when that is, or why it is not offered."""
    if not parse_hours(account.business_hours):
        return {"at": None, "reason": f"{account.name} has no business hours set"}
    now = timezone.now()
    opens = next_open(account, now)
    if opens is None:
        return {"at": None, "reason": f"{account.name}'s business hours have no open day"}
    return {"at": opens, "open_now": opens <= now, "reason": ""}


def scheduled_context(request, conversation: Conversation) -> dict:
    """The scheduled replies above the composer, each marked whether this person may change it."""
    admin = is_admin(request)
    rows = list(scheduled_for(conversation))
    for row in rows:
        row.changeable = can_change(row, user=request.user, is_admin=admin)
        # as the contact will read it (merge fields are filled in again when it leaves)
        row.preview = merge_fields_render(row.text, MergeContext(contact=conversation.contact, account=row.account,
                                                                 agent=row.created_by))
    own = request.membership is not None and bool(request.membership.timezone)
    return {"scheduled": rows, "schedule_zone": zone_for(location=request.location, membership=request.membership).key,
            "schedule_zone_whose": "your time zone" if own else "the location's time zone"}


def attachments_context(request, conversation: Conversation) -> dict:
    """What the composer may attach through each account it can send through (composer.js
    refuses a file before uploading it), and the files a refused send had attached (kept)."""
    try:
        pending = pending_uploads(request, conversation)
    except ApplicationError:
        pending = []
    for upload in pending:
        upload.size_label = size_label(upload.size)
    limits = limits_for(conversation.account)
    # the other accounts the composer offers are added by the template (|with_accounts)
    return {"attachment_limits": limits_json([conversation.account]), "attachment_summary": limits.summary(),
            "attachment_accept": ",".join(limits.types), "pending_uploads": pending}


def composer_context(request, conversation: Conversation) -> dict:
    return {
        **attachments_context(request, conversation),
        "picker_templates": picker_templates(conversation, request.user),
        "business_hours": business_hours_hint(conversation.account),
        **scheduled_context(request, conversation),
    }
