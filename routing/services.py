"""Assignment of conversations. Today: the account's default assignee (a per-account
setting), and a returning contact keeps the owner its conversation already has."""
from conversations.models import Conversation


def conversation_route(*, conversation: Conversation) -> bool:
    """Assign an unassigned conversation; True when the assignee changed."""
    if conversation.assignee_id:
        return False
    owner_id = conversation.contact.assignee_id or conversation.account.default_assignee_id
    if not owner_id:
        return False
    conversation.assignee_id = owner_id
    conversation.save(update_fields=["assignee"])
    if not conversation.contact.assignee_id:
        type(conversation.contact).objects.filter(pk=conversation.contact_id).update(assignee_id=owner_id)
    return True
