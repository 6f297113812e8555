"""How the conversations app reacts to domain events (registered in ConversationsConfig.ready):
the inbox's live updates for its own events, and its part of changes made below it (a member
who leaves, two contacts merged)."""
from accounts.models import Membership
from contacts.models import Contact
from conversations.actions import conversation_assign
from conversations.history import history_on_connect
from conversations.models import Conversation, Message, ScheduledMessage
from conversations.notifications import assignees_now, notification_data
from conversations.scheduling import scheduled_messages_of_leaving_member
from whatsnap import events
from whatsnap.live import publish_many_on_commit, publish_on_commit


# --- live: which parts of the open pages refresh ------------------------------------------------
def _conversation_topics(conversation) -> list[str]:
    return ["inbox", f"conversation:{conversation.pk}", f"contact:{conversation.contact_id}"]


@events.on_many("message.received")
def live_message_received(batch) -> None:
    """Also what a notification shows and whom it is for (routing, subscribed before, has
    assigned the conversation by now): its assignee, the contact's name, a short preview."""
    assignees = assignees_now({e["conversation"].pk for e in batch})
    items = []
    for event in batch:
        message, conversation, account = event["message"], event["conversation"], event["account"]
        items.append(("message.received",
                      ["inbox", f"conversation:{conversation.pk}", f"sandbox:{account.pk}", f"account:{account.pk}"],
                      {"conversation": conversation.pk, "message": message.pk,
                       **notification_data(message, contact=event.get("contact") or conversation.contact,
                                           sender=event.get("sender"), assignee_id=assignees.get(conversation.pk))}))
    publish_many_on_commit(location_id=batch[0].location_id, items=items)


@events.on("message.sent_from_device", "message.imported")
def live_message_filed(event) -> None:
    """A message typed on the account's own phone or Mac, or one of the history imported on
    connect: a new row in the thread (and maybe the list's preview)."""
    message, conversation, account = event["message"], event["conversation"], event["account"]
    publish_on_commit(location_id=event.location_id, event=event.name,
                      topics=["inbox", f"conversation:{conversation.pk}", f"sandbox:{account.pk}"],
                      data={"conversation": conversation.pk, "message": message.pk})


@events.on("message.reacted", "message.edited", "message.deleted")
def live_message_changed(event) -> None:
    """A reaction, an edit or a deletion changes a bubble of the thread (and the sandbox phone's)."""
    message = event["message"]
    topics = [f"conversation:{message.conversation_id}", f"message:{message.pk}", f"sandbox:{message.account_id}"]
    if event.name != "message.reacted":
        topics.append("inbox")  # the list's preview may be that message's text
    publish_on_commit(location_id=event.location_id, event=event.name, topics=topics,
                      data={"conversation": message.conversation_id, "message": message.pk})


@events.on("conversation.chat_event")
def live_chat_event(event) -> None:
    conversation = event["conversation"]
    publish_on_commit(location_id=event.location_id, event="conversation.chat_event",
                      topics=[f"conversation:{conversation.pk}", f"sandbox:{conversation.account_id}"],
                      data={"conversation": conversation.pk})


@events.on("message.queued")
def live_message_queued(event) -> None:
    message, conversation = event["message"], event["conversation"]
    publish_on_commit(location_id=event.location_id, event="message.queued",
                      topics=["inbox", f"conversation:{conversation.pk}"],
                      data={"conversation": conversation.pk, "message": message.pk})


@events.on("message.status_changed")
def live_message_status(event) -> None:
    message = event["message"]
    publish_on_commit(location_id=event.location_id, event="message.status",
                      topics=[f"conversation:{message.conversation_id}", f"message:{message.pk}", f"sandbox:{message.account_id}"],
                      data={"message": message.pk, "status": event["status"]})


@events.on("conversation.assigned")
def live_conversation_assigned(event) -> None:
    conversation, assignee = event["conversation"], event["assignee"]
    publish_on_commit(location_id=event.location_id, event="conversation.assigned", topics=_conversation_topics(conversation),
                      data={"conversation": conversation.pk, "assignee": assignee.pk if assignee else None})


@events.on("conversation.status_changed")
def live_conversation_status(event) -> None:
    conversation = event["conversation"]
    publish_on_commit(location_id=event.location_id, event="conversation.status", topics=_conversation_topics(conversation),
                      data={"conversation": conversation.pk, "status": event["status"]})


@events.on("conversation.read", "conversation.unread")
def live_conversation_read(event) -> None:
    conversation = event["conversation"]
    publish_on_commit(location_id=event.location_id, event=event.name, topics=_conversation_topics(conversation),
                      data={"conversation": conversation.pk})


@events.on("note.added")
def live_note_added(event) -> None:
    conversation = event["conversation"]
    publish_on_commit(location_id=event.location_id, event="note.added", topics=_conversation_topics(conversation),
                      data={"conversation": conversation.pk, "message": event["note"].pk})


@events.on("scheduled_message.created", "scheduled_message.changed", "scheduled_message.cancelled",
           "scheduled_message.sent", "scheduled_message.failed")
def live_scheduled_message(event) -> None:
    """The list of scheduled replies above the composer follows its conversation's topic."""
    conversation = event["conversation"]
    publish_on_commit(location_id=event.location_id, event=event.name, topics=[f"conversation:{conversation.pk}"],
                      data={"conversation": conversation.pk, "scheduled": event["scheduled"].pk})


# --- changes made below ---------------------------------------------------------------------------
@events.on("member.removing")
def unassign_leaving_member(event) -> None:
    """A person taken out of the location: their open conversations become unassigned."""
    membership: Membership = event["membership"]
    mine = Conversation.objects.filter(location_id=membership.location_id, assignee_id=membership.user_id)
    for conversation in mine.exclude(status=Conversation.Status.RESOLVED):
        conversation_assign(conversation=conversation, assignee=None, reason=f"{membership.user} left the location")


@events.on("member.removing")
def fail_scheduled_of_leaving_member(event) -> None:
    """What a person taken out of the location scheduled does not go out in their name."""
    membership: Membership = event["membership"]
    scheduled_messages_of_leaving_member(location_id=membership.location_id, user_id=membership.user_id)


@events.on("contact.merging")
def move_threads_on_merge(event) -> None:
    """Merging two contacts: source's conversations move to `into`; where both wrote through
    the same account, the two threads fold into one."""
    source: Contact = event["source"]
    into: Contact = event["into"]
    for conversation in Conversation.objects.filter(contact=source):
        target = Conversation.objects.filter(contact=into, account_id=conversation.account_id).first()
        if target is None:
            Conversation.objects.filter(pk=conversation.pk).update(contact=into)
            continue
        Message.objects.filter(conversation=conversation).update(conversation=target)
        ScheduledMessage.objects.filter(conversation=conversation).update(conversation=target)
        if conversation.last_message_at and (not target.last_message_at or conversation.last_message_at > target.last_message_at):
            target.last_message_at, target.last_message_preview = conversation.last_message_at, conversation.last_message_preview
        target.unread_count += conversation.unread_count
        target.save(update_fields=["last_message_at", "last_message_preview", "unread_count"])
        conversation.delete()
    Message.objects.filter(sender_contact=source).update(sender_contact=into)


@events.on("account.status_changed", on_commit=True)
def import_history_on_connect(event) -> None:
    """An account whose backend keeps history came up: import the recent history (conversations.history)."""
    history_on_connect(account=event["account"], status=event["status"], previous=event["previous"])
