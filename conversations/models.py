from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.text import get_valid_filename


class Conversation(models.Model):
    """One contact (or WhatsApp group) talking to one account."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PENDING = "pending", "Pending"
        RESOLVED = "resolved", "Resolved"
        SNOOZED = "snoozed", "Snoozed"

    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="conversations")
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="conversations")
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="conversations")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    snoozed_until = models.DateTimeField(null=True, blank=True)
    unread_count = models.PositiveIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_message_preview = models.CharField(max_length=160, blank=True)
    auto_replied_at = models.DateTimeField(null=True, blank=True, help_text="last out-of-hours auto-reply")
    # kept on write so reports take first-response times from conversations, not messages
    first_inbound_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True, help_text="first reply after the first inbound message")
    first_resolved_at = models.DateTimeField(null=True, blank=True)
    # the last inbound message whose read receipt went to the platform (each is marked once)
    read_receipt_through = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_message_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["contact", "account"], name="uniq_conversation_contact_account")
        ]
        indexes = [
            models.Index(fields=["location", "-last_message_at"], name="conv_location_activity"),
            # reports: the period's conversations and their durations from the index alone
            models.Index(fields=["location", "created_at"], name="conv_location_opened",
                         include=["account", "assignee", "first_inbound_at", "first_response_at", "first_resolved_at"]),
        ]

    def __str__(self):
        return f"{self.contact} via {self.account}"


class Message(models.Model):
    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound"
        OUTBOUND = "outbound", "Outbound"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        READ = "read", "Read"
        FAILED = "failed", "Failed"

    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="messages")
    direction = models.CharField(max_length=10, choices=Direction.choices, db_index=True)
    is_note = models.BooleanField(default=False, help_text="private note: shown to the team, never sent")
    text = models.TextField(blank=True)
    media = models.JSONField(default=list, blank=True)  # [{"url": ..., "content_type": ...}]
    provider_message_id = models.CharField(max_length=128, blank=True)
    # the part of the provider id that names the message whatever chat address it was written
    # with (Provider.message_id_core; '' when the whole id does): found by index, never by LIKE
    provider_id_core = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=10, choices=Status.choices, db_index=True)
    error = models.CharField(max_length=300, blank=True)
    send_attempts = models.PositiveSmallIntegerField(default=0, help_text="sends that failed transiently and were retried")
    # For WhatsApp groups: the participant who wrote (the conversation's contact is the group).
    sender_contact = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    sent_at = models.DateTimeField(default=timezone.now, help_text="platform time")
    created_at = models.DateTimeField(default=timezone.now)
    status_changed_at = models.DateTimeField(default=timezone.now)
    # outbound typed on the phone or Mac itself, not sent by WhatSnap
    via_device = models.BooleanField(default=False)
    # imported from the gateway's history on connect: never routed, auto-replied or sent to GHL
    is_history = models.BooleanField(default=False)
    # the message this one quotes (a quoted reply); its provider id and text when it is not here
    reply_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reply_to_provider_id = models.CharField(max_length=128, blank=True)
    quoted_text = models.CharField(max_length=300, blank=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    edits = models.JSONField(default=list, blank=True, help_text="earlier texts, oldest first: [{text, until}] (admins only)")
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="deleted for everyone")

    class Meta:
        ordering = ["sent_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="uniq_message_provider_id",
            )
        ]
        indexes = [
            models.Index(fields=["account", "provider_id_core"], condition=~Q(provider_id_core=""), name="msg_provider_id_core"),
            models.Index(fields=["conversation", "sent_at"], name="msg_conversation_time"),
            models.Index(fields=["location", "sent_at"], name="msg_location_time"),  # reports, rollups
        ]

    def save(self, *args, **kwargs):
        adding = self._state.adding
        super().save(*args, **kwargs)
        if adding and not self.is_note:
            self._note_first_times()

    def _note_first_times(self) -> None:
        """Keep the conversation's first inbound / first reply times (reports read them)."""
        rows = Conversation.objects.filter(pk=self.conversation_id)
        if self.direction == self.Direction.INBOUND:
            rows.filter(Q(first_inbound_at__isnull=True) | Q(first_inbound_at__gt=self.sent_at)).update(first_inbound_at=self.sent_at)
        else:
            rows.filter(first_inbound_at__lte=self.sent_at, first_response_at__isnull=True).update(first_response_at=self.sent_at)


class MessageReaction(models.Model):
    """An emoji on a message: one per reacting party (the contact, a group participant, or
    the account itself — from the phone or an agent in the inbox)."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    # "me" for the account's side; "c<contact id>" for a contact
    actor_key = models.CharField(max_length=40)
    contact = models.ForeignKey("contacts.Contact", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    emoji = models.CharField(max_length=32)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        constraints = [models.UniqueConstraint(fields=["message", "actor_key"], name="uniq_reaction_per_actor")]


class InboundEvent(models.Model):
    """A verified webhook event, stored before the 200 goes out; processed by a task. One that
    is not filed ends UNFILED with its reason in `error` (an admin may re-run it)."""

    class Kind(models.TextChoices):
        MESSAGE = "message", "Message"
        STATUS = "status", "Delivery status"
        REACTION = "reaction", "Reaction"
        EDIT = "edit", "Edit"
        DELETE = "delete", "Deletion"
        CHAT_EVENT = "chat_event", "Group event"
        IDENTITY = "identity", "Phone of a WhatsApp LID"
        UNFILED = "unfiled", "Webhook not understood"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        UNFILED = "unfiled", "Not filed"

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="inbound_events")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    dedupe_key = models.CharField(max_length=160)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "dedupe_key"], name="uniq_inbound_event")
        ]
        indexes = [
            models.Index(fields=["status", "received_at"], name="inbound_pending"),
            models.Index(fields=["account", "status"], name="inbound_account_status"),  # diagnostics
        ]


class ConversationEvent(models.Model):
    """History of a conversation: assignments and status changes, who and when."""

    class Kind(models.TextChoices):
        ASSIGNED = "assigned", "Assigned"
        UNASSIGNED = "unassigned", "Unassigned"
        STATUS = "status", "Status changed"
        CHAT = "chat", "Group event"  # members joined/left, renamed: `reason` says what

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    from_value = models.CharField(max_length=150, blank=True)
    to_value = models.CharField(max_length=150, blank=True)
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def save(self, *args, **kwargs):
        adding = self._state.adding
        super().save(*args, **kwargs)
        if adding and self.kind == self.Kind.STATUS and self.to_value == "resolved":
            # kept on the conversation for reports (resolution time)
            Conversation.objects.filter(pk=self.conversation_id).filter(
                Q(first_resolved_at__isnull=True) | Q(first_resolved_at__gt=self.at)
            ).update(first_resolved_at=self.at)


class MessageTemplate(models.Model):
    """A reply every agent of the location may use (the composer's `/` picker, broadcasts), with
    merge fields ({{first_name|there}}: conversations/merge_fields.py). Was CannedResponse."""

    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="message_templates")
    name = models.CharField(max_length=100)
    body = models.TextField(help_text="The text; merge fields like {{first_name|there}} are filled in for each contact")
    shortcut = models.SlugField(max_length=40, blank=True, help_text="Type /shortcut in the composer to find it (optional)")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["location", "name"], name="uniq_template_name"),
            models.UniqueConstraint(fields=["location", "shortcut"], condition=~Q(shortcut=""), name="uniq_template_shortcut"),
        ]

    def __str__(self):
        return f"{self.name} (/{self.shortcut})" if self.shortcut else self.name


class ScheduledMessage(models.Model):
    """A reply that leaves at `send_at` (conversations/scheduling.py): a stored row, sent once by
    its one-off task or the minute sweep, whichever claims it first."""

    class Status(models.TextChoices):
        PENDING = "pending", "Scheduled"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Not sent"

    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="scheduled_messages")
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+")
    text = models.TextField(help_text="Merge fields are filled in when it leaves")
    send_at = models.DateTimeField()
    at_business_hours = models.BooleanField(default=False, help_text="chosen as 'at the next business hours'")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.CharField(max_length=300, blank=True)
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["send_at", "id"]
        indexes = [
            models.Index(fields=["send_at"], condition=Q(status="pending"), name="scheduled_due"),
            models.Index(fields=["conversation", "status"], name="scheduled_conversation"),
        ]


class MessageDayCount(models.Model):
    """Messages per local day (the location's time zone), account, direction and author,
    rolled up from the messages table by conversations/rollups.py so reports over months of
    messages read a few rows per day. Rows cover messages up to the location's watermark;
    reports count newer messages live."""

    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    direction = models.CharField(max_length=10)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    n = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["location", "day"], name="msgday_location_day")]


class ReportRollupState(models.Model):
    """How far a location's MessageDayCount rows go (messages with id <= watermark), and in
    which time zone their days were cut."""

    location = models.OneToOneField("accounts.Location", on_delete=models.CASCADE, related_name="+")
    watermark = models.BigIntegerField(default=0)
    tz = models.CharField(max_length=64)
    refreshed_at = models.DateTimeField(default=timezone.now)


def upload_path(upload, filename: str) -> str:
    """Where a composer upload is stored: under its location, in a folder named by a random
    token (a name is never guessed from another; storages never list it to anyone)."""
    safe = get_valid_filename(filename)[-100:] or "file"
    return f"uploads/{upload.location_id}/{timezone.now():%Y/%m}/{get_random_string(24)}/{safe}"


class Upload(models.Model):
    """A file chosen or dropped into the composer, stored through Django's storage API
    (conversations/uploads.py). It is sent as a message's media (then `message` is set); one
    never sent is removed after UPLOAD_UNSENT_RETENTION_HOURS."""
    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="uploads")
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="uploads")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    file = models.FileField(upload_to=upload_path, max_length=300)
    filename = models.CharField(max_length=200, help_text="as the person's computer named it")
    content_type = models.CharField(max_length=100, help_text="read from the file's first bytes")
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["created_at"], condition=Q(message__isnull=True), name="upload_unsent")]

    def __str__(self):
        return self.filename
