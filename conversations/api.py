"""/api/v1/conversations/ and /api/v1/messages/. Agent-scoped tokens see (and act on) only
the conversations assigned to their user, and those conversations' messages."""
from django.contrib.auth import get_user_model
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from accounts.models import Account
from contacts.models import Contact
from conversations.actions import conversation_assign, conversation_set_status
from conversations.models import Conversation, Message, MessageReaction
from conversations.reactions import message_react
from conversations.services import message_retry, message_send
from conversations.timeline import ME
from whatsnap import guarded_fetch
from whatsnap.api_base import MAX_ID, IDEMPOTENCY_KEY_PARAMETER, LocationObjectField, LocationViewSet, id_filter, idempotent
from whatsnap.errors import NOT_A_MEMBER

AGENT_SCOPE = "Agent-scoped tokens can only act on conversations assigned to their user."


class ConversationContactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = ["id", "phone", "name"]


class ConversationSerializer(serializers.ModelSerializer):
    contact = ConversationContactSerializer(read_only=True)

    class Meta:
        model = Conversation
        fields = ["id", "contact", "account", "status", "assignee", "snoozed_until", "unread_count", "last_message_at",
                  "last_message_preview", "created_at"]


class ConversationFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=Conversation.Status.choices, required=False)
    assignee = id_filter(help_text="User id")
    unassigned = serializers.BooleanField(required=False, allow_null=True, default=None, help_text="true: only unassigned")
    account = id_filter()
    contact = id_filter()


class ConversationAssignSerializer(serializers.Serializer):
    assignee = serializers.IntegerField(min_value=1, max_value=MAX_ID, allow_null=True,
                                        help_text="User id of a member of the location; null unassigns")


# Documented as "ConversationRequest": the writable part of a Conversation (one `status` enum).
@extend_schema_serializer(component_name="Conversation")
class ConversationStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Conversation.Status.choices)
    snooze_until = serializers.DateTimeField(required=False, allow_null=True, help_text="Required for snoozed")


@extend_schema_view(list=extend_schema(parameters=[ConversationFilters], summary="Conversations, filtered"))
class ConversationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LocationViewSet):
    serializer_class = ConversationSerializer
    filter_serializer_class = ConversationFilters
    ordering_fields = ("id", "created_at")

    def get_queryset(self):
        qs = Conversation.objects.filter(location=self.location).select_related("contact")
        if self.agent_user_id is not None:
            qs = qs.filter(assignee_id=self.agent_user_id)
        return qs

    def apply_filters(self, queryset, params):
        if "unassigned" in params:
            queryset = queryset.filter(assignee__isnull=params.pop("unassigned"))
        for name in ("status", "assignee", "account", "contact"):
            if name in params:
                queryset = queryset.filter(**{name: params[name]})
        return queryset

    @extend_schema(request=ConversationAssignSerializer, responses=ConversationSerializer,
                   summary="Assign to a member (or unassign with null)")
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        conversation = self.get_object()
        serializer = ConversationAssignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        assignee_id = serializer.validated_data["assignee"]
        assignee = None
        if assignee_id is not None:
            # looked up among this location's members only: an id from elsewhere and an id
            # nobody has get the same answer
            assignee = get_user_model().objects.filter(pk=assignee_id, memberships__location=self.location).first()
            if assignee is None:
                raise serializers.ValidationError({"assignee": [NOT_A_MEMBER]})
        conversation_assign(conversation=conversation, assignee=assignee, actor=self._actor(), reason="through the API")
        return Response(self._present(conversation))

    @extend_schema(request=ConversationStatusSerializer, responses=ConversationSerializer,
                   summary="Open, mark pending, resolve or snooze")
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request, pk=None):
        conversation = self.get_object()
        serializer = ConversationStatusSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        conversation_set_status(conversation=conversation, status=data["status"], actor=self._actor(),
                                snooze_until=data.get("snooze_until"))
        return Response(self._present(conversation))

    def _actor(self):
        return self.request.user if self.request.user.is_authenticated else None

    def _present(self, conversation) -> dict:
        # Unscoped on purpose: an agent who just handed the conversation on still gets the answer.
        return ConversationSerializer(Conversation.objects.select_related("contact").get(pk=conversation.pk)).data


# --- messages ----------------------------------------------------------------------------------
class MessageReactionSerializer(serializers.ModelSerializer):
    by = serializers.SerializerMethodField(help_text="Who reacted: the contact's name, the agent's username, or the "
                                                     "account's name (its own phone, or an API token without a user)")
    from_me = serializers.SerializerMethodField(help_text="The account's side reacted (an agent, or its own device)")

    class Meta:
        model = MessageReaction
        fields = ["emoji", "by", "from_me", "contact", "author", "at"]

    def get_by(self, reaction) -> str:
        if reaction.actor_key == ME:
            return reaction.author.get_username() if reaction.author else reaction.message.account.name
        return reaction.contact.display_name if reaction.contact else ""

    def get_from_me(self, reaction) -> bool:
        return reaction.actor_key == ME


class MessageEditSerializer(serializers.Serializer):
    text = serializers.CharField(help_text="The text before this edit")
    until = serializers.DateTimeField(help_text="When it was replaced")


class MessageSerializer(serializers.ModelSerializer):
    """A message. For tokens that are not admin tokens, a message deleted for everyone has an
    empty text and media, and `edits` (the earlier texts of an edited message) is null."""

    contact = serializers.IntegerField(source="conversation.contact_id", read_only=True)
    media = serializers.ListField(child=serializers.DictField(), read_only=True,
                                  help_text="Attachments: [{url, content_type}]")
    reactions = MessageReactionSerializer(many=True, read_only=True)
    edits = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = ["id", "conversation", "contact", "account", "direction", "is_note", "text", "media", "status", "error",
                  "provider_message_id", "author", "sent_at", "status_changed_at", "created_at", "via_device", "is_history",
                  "reply_to", "quoted_text", "edited_at", "edits", "deleted_at", "reactions"]
        extra_kwargs = {
            "via_device": {"help_text": "Outbound, typed on the account's own phone or Mac (not sent through WhatSnap)"},
            "is_history": {"help_text": "Imported from the gateway's history when the account connected"},
            "reply_to": {"help_text": "The message this one quotes, when WhatSnap has it"},
            "quoted_text": {"help_text": "The quoted message's text as the platform showed it"},
            "deleted_at": {"help_text": "Deleted for everyone by its sender"},
        }

    @extend_schema_field(MessageEditSerializer(many=True, allow_null=True, help_text="Earlier texts, oldest first "
                                               "(admin tokens only; null for others)"))
    def get_edits(self, message):
        return list(message.edits or []) if self._admin else None

    @property
    def _admin(self) -> bool:
        return bool(self.context.get("admin"))

    def to_representation(self, message):
        data = super().to_representation(message)
        if message.deleted_at and not self._admin:
            data["text"], data["media"] = "", []
        return data


class MediaSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    content_type = serializers.CharField(max_length=100, required=False, allow_blank=True)

    def validate_url(self, value):
        # the backend (or the inbox) fetches it: it must not point inside our network
        problem = guarded_fetch.address_problem(value, purpose=guarded_fetch.MEDIA)
        if problem:
            raise serializers.ValidationError(problem)
        return value


class MessageCreateSerializer(serializers.Serializer):
    conversation = LocationObjectField(queryset=Conversation.objects.select_related("contact", "account"), required=False,
                                       help_text="Reply in this conversation (through its account unless `account` is given)")
    contact = LocationObjectField(queryset=Contact.objects.all(), required=False,
                                  help_text="With `account`: write to this contact through that account")
    account = LocationObjectField(queryset=Account.objects.filter(archived_at__isnull=True), required=False)
    text = serializers.CharField(max_length=4000, required=False, allow_blank=True)
    media = MediaSerializer(many=True, required=False, max_length=10)
    reply_to = LocationObjectField(queryset=Message.objects.all(), required=False, allow_null=True,
                                   help_text="Quote this message of the same conversation (a quoted reply)")

    def validate(self, data):
        if not data.get("conversation") and not (data.get("contact") and data.get("account")):
            raise serializers.ValidationError({"conversation": ["Give a conversation, or a contact and an account."]})
        if data.get("conversation") and data.get("contact") and data["contact"].pk != data["conversation"].contact_id:
            raise serializers.ValidationError({"contact": ["This is not the conversation's contact."]})
        if not (data.get("text") or "").strip() and not data.get("media"):
            raise serializers.ValidationError({"text": ["Give a text or media."]})
        quoted = data.get("reply_to")
        if quoted is not None and not self._same_conversation(quoted, data):
            raise serializers.ValidationError({"reply_to": ["Quote a message of the same conversation."]})
        return data

    @staticmethod
    def _same_conversation(quoted: Message, data: dict) -> bool:
        if data.get("conversation"):
            return quoted.conversation_id == data["conversation"].pk
        return quoted.conversation.contact_id == data["contact"].pk and quoted.account_id == data["account"].pk


class MessageReactSerializer(serializers.Serializer):
    emoji = serializers.CharField(max_length=32, allow_blank=True, trim_whitespace=True,
                                  help_text="One emoji, e.g. 👍; empty takes the account's reaction back")


def _with_reactions(messages):
    return messages.prefetch_related(Prefetch(
        "reactions", queryset=MessageReaction.objects.select_related("contact", "author", "message__account")))


class MessageFilters(serializers.Serializer):
    conversation = id_filter()
    direction = serializers.ChoiceField(choices=Message.Direction.choices, required=False)
    status = serializers.ChoiceField(choices=Message.Status.choices, required=False)
    account = id_filter()


@extend_schema_view(
    list=extend_schema(parameters=[MessageFilters], summary="Messages, filtered"),
    create=extend_schema(
        request=MessageCreateSerializer, responses={201: MessageSerializer}, parameters=[IDEMPOTENCY_KEY_PARAMETER],
        summary="Send a message",
        description="Queues the message for sending (status `queued`) and answers at once; its status then moves "
        "to sent, delivered, read or failed. Send an `Idempotency-Key` header to make retries safe.",
    ),
)
class MessageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LocationViewSet):
    serializer_class = MessageSerializer
    filter_serializer_class = MessageFilters
    ordering_fields = ("id", "created_at")

    def get_queryset(self):
        qs = _with_reactions(Message.objects.filter(location=self.location).select_related("conversation"))
        if self.agent_user_id is not None:
            qs = qs.filter(conversation__assignee_id=self.agent_user_id)
        return qs

    def apply_filters(self, queryset, params):
        if "conversation" in params:
            queryset = queryset.filter(conversation_id=params["conversation"])
        for name in ("direction", "status", "account"):
            if name in params:
                queryset = queryset.filter(**{name: params[name]})
        return queryset

    def create(self, request):
        serializer = MessageCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return idempotent(request, lambda: self._send(serializer.validated_data))

    def _send(self, data) -> tuple[int, dict]:
        conversation, account = data.get("conversation"), data.get("account")
        if conversation is None:
            conversation = Conversation.objects.filter(contact=data["contact"], account=account).first()
            if conversation is None:
                # message_send opens the (contact, account) conversation when handed one on another account.
                conversation = Conversation(location=self.location, contact=data["contact"])
        if self.agent_user_id is not None and conversation.assignee_id != self.agent_user_id:
            raise PermissionDenied(AGENT_SCOPE)
        author = self._author()
        message = message_send(conversation=conversation, text=data.get("text", ""), author=author, account=account,
                               media=[dict(m) for m in data.get("media", [])] or None, reply_to=data.get("reply_to"))
        return status.HTTP_201_CREATED, MessageSerializer(message, context=self.get_serializer_context()).data

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "admin": self.is_admin}

    def _author(self):
        return self.request.user if self.request.user.is_authenticated else None

    def _present(self, message) -> dict:
        fresh = _with_reactions(Message.objects.select_related("conversation")).get(pk=message.pk)
        return MessageSerializer(fresh, context=self.get_serializer_context()).data

    @extend_schema(request=None, responses=MessageSerializer, summary="Retry a failed outbound message")
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        message = message_retry(message=self.get_object())
        return Response(MessageSerializer(message, context=self.get_serializer_context()).data)

    @extend_schema(request=MessageReactSerializer, responses=MessageSerializer, summary="React to a message",
                   description="Sets the account's reaction (one per message) and sends it through the backend; an "
                   "empty emoji takes it back. 400 when the account's backend cannot send reactions or the message is "
                   "not on the platform (a private note, not sent yet, deleted). When the backend refuses it later, the "
                   "reaction is taken back (the message's `reactions` show it).")
    @action(detail=True, methods=["post"], url_path="reactions")
    def react(self, request, pk=None):
        message = self.get_object()
        serializer = MessageReactSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        message_react(message=message, emoji=serializer.validated_data["emoji"], author=self._author())
        return Response(self._present(message))
