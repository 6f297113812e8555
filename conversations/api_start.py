"""POST /api/v1/conversations/: start a conversation (issue 18) — the API's New conversation.

The conversations endpoint of conversations/api.py plus `create`; the work is
conversations.starting.conversation_start, as on the New conversation page."""
from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied

from accounts.models import Account
from contacts.models import Contact
from conversations.api import AGENT_SCOPE, ConversationSerializer, ConversationViewSet, MessageSerializer
from conversations.models import Conversation, Message
from conversations.starting import conversation_start
from whatsnap.api_base import IDEMPOTENCY_KEY_PARAMETER, LocationObjectField, idempotent


class ConversationStartSerializer(serializers.Serializer):
    account = LocationObjectField(queryset=Account.objects.filter(archived_at__isnull=True),
                                  help_text="The account to write through (one that can reach the person)")
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True,
                                  help_text="The number to write to, best with its country code (+14155550123); "
                                  "without one it is read in the location's country. Give `phone` or `contact`.")
    contact = LocationObjectField(queryset=Contact.objects.all(), required=False,
                                  help_text="An existing contact to write to. Give `phone` or `contact`.")
    name = serializers.CharField(max_length=120, required=False, allow_blank=True,
                                 help_text="The name of a contact this creates (or of a contact without a name)")
    text = serializers.CharField(max_length=4000, help_text="The message; merge fields such as {{first_name|there}} allowed")

    def validate(self, data):
        phone = (data.get("phone") or "").strip()
        if phone and data.get("contact"):
            raise serializers.ValidationError({"phone": ["Give a phone or a contact, not both."]})
        if not phone and not data.get("contact"):
            raise serializers.ValidationError({"phone": ["Give the phone number to write to, or a contact."]})
        return data


class ConversationStartedSerializer(serializers.Serializer):
    conversation = ConversationSerializer()
    message = MessageSerializer(help_text="The first message, queued (its status then moves to sent, delivered, read or failed)")
    contact_created = serializers.BooleanField(help_text="The number was new: a contact was created")
    conversation_created = serializers.BooleanField(help_text="False: the contact's conversation on this account was reused")
    notice = serializers.CharField(help_text="What happened, in a sentence for people")


@extend_schema_view(create=extend_schema(
    request=ConversationStartSerializer, responses={201: ConversationStartedSerializer},
    parameters=[IDEMPOTENCY_KEY_PARAMETER], summary="Start a conversation",
    description="Writes first to a number or a contact through an account. The contact is found by phone or "
    "created (with the account's tag), the contact's conversation on that account is found or created and "
    "assigned to the token's user (none for a token without a user; a conversation a colleague has open stays "
    "theirs), and the message is queued like any reply. 400 (with `code`) when the number is not a phone number "
    "(`invalid_phone`), the contact opted out (`opted_out`), the account is not connected "
    "(`account_unavailable`) or cannot reach them (`unreachable`, e.g. an SMS account and a WhatsApp contact "
    "whose number WhatsApp has not shared), or a merge field is unknown. Agent-scoped tokens cannot write into "
    "an existing conversation their user does not have — unassigned or a colleague's, open or closed (403). Send an `Idempotency-Key` header to make retries safe.",
))
class ConversationStartViewSet(ConversationViewSet):
    """/api/v1/conversations/ with `create` (registered in its place)."""

    def create(self, request):
        serializer = ConversationStartSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return idempotent(request, lambda: self._start(serializer.validated_data))

    def _start(self, data) -> tuple[int, dict]:
        author = self._actor()
        with transaction.atomic():
            started = conversation_start(location=self.location, account=data["account"], text=data["text"],
                                         phone=data.get("phone", ""), contact=data.get("contact"),
                                         name=data.get("name", ""), author=author)
            # An agent-scoped token sees only its user's conversations: it may start a new one,
            # or write into one its user has, but never take an existing one over (unassigned,
            # or a colleague's, open or closed) and with it that conversation's history.
            if self.agent_user_id is not None and not started.conversation_created \
                    and started.previous_assignee_id != self.agent_user_id:
                raise PermissionDenied(AGENT_SCOPE)  # nothing stays: the transaction rolls back
        conversation = Conversation.objects.select_related("contact").get(pk=started.conversation.pk)
        message = Message.objects.select_related("conversation").prefetch_related("reactions").get(pk=started.message.pk)
        return status.HTTP_201_CREATED, {
            "conversation": ConversationSerializer(conversation).data,
            "message": MessageSerializer(message, context={"admin": self.is_admin}).data,
            "contact_created": started.contact_created,
            "conversation_created": started.conversation_created,
            "notice": started.notice,
        }
