"""/api/v1/templates/ (every token reads; admin tokens manage), and scheduled replies:
/api/v1/conversations/{id}/scheduled/ (list, schedule) and /api/v1/scheduled-messages/{id}/
(read, change, cancel). A time without an offset is read in the location's time zone, and times
are answered in it. Agent-scoped tokens schedule only in the conversations assigned to their
user and change only the scheduled messages their user wrote."""

from django.db.models import Q
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from accounts.api_auth import HasLocationToken
from accounts.models import Account
from conversations.message_templates import template_create, template_delete, template_render, template_update, templates_for
from conversations.models import Conversation, MessageTemplate, ScheduledMessage
from conversations.scheduling import (
    can_change, scheduled_message_cancel, scheduled_message_create, scheduled_message_update, zone_for)
from whatsnap.api_base import IDEMPOTENCY_KEY_PARAMETER, AdminTokenForWrites, LocationObjectField, LocationViewSet, id_filter, idempotent
from whatsnap.params import id_param

AGENT_SCOPE = "Agent-scoped tokens schedule only in conversations assigned to their user."
NOT_YOURS = "Agent-scoped tokens change only the scheduled messages their user wrote."


class AdminTokenForChanges(AdminTokenForWrites):
    """Every token reads and renders templates; only admin tokens change them."""

    def has_permission(self, request, view):
        return view.action == "render_for" or super().has_permission(request, view)


# --- templates ---------------------------------------------------------------------------------
class MessageTemplateSerializer(serializers.ModelSerializer):
    class Meta:
        model = MessageTemplate
        fields = ["id", "name", "shortcut", "body", "created_by", "created_at", "updated_at"]
        read_only_fields = ["created_by", "created_at", "updated_at"]
        extra_kwargs = {"body": {"help_text": "The text, with merge fields like {{first_name|there}}"}}


class MessageTemplateWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    shortcut = serializers.CharField(max_length=40, required=False, allow_blank=True, help_text="Optional: /shortcut in the composer")
    body = serializers.CharField(max_length=4000, required=False, help_text="Merge fields: {{first_name}}, {{name}}, {{last_name}}, "
                                 "{{phone}}, {{account}}, {{agent}}; a fallback after |, e.g. {{first_name|there}}")


class TemplateRenderSerializer(serializers.Serializer):
    conversation = LocationObjectField(queryset=Conversation.objects.select_related("contact", "account"),
                                       help_text="Fill the merge fields for this conversation's contact and account")


class TemplateRenderedSerializer(serializers.Serializer):
    text = serializers.CharField()


class TemplateFilters(serializers.Serializer):
    q = serializers.CharField(required=False, max_length=100, help_text="Part of the name or shortcut")


@extend_schema_view(
    list=extend_schema(parameters=[TemplateFilters], summary="Message templates (the composer's / picker, broadcasts)"),
    create=extend_schema(request=MessageTemplateWriteSerializer, responses={201: MessageTemplateSerializer},
                         summary="Create a template (admin tokens)"),
    partial_update=extend_schema(request=MessageTemplateWriteSerializer, responses=MessageTemplateSerializer,
                                 summary="Change a template (admin tokens)"),
    destroy=extend_schema(summary="Delete a template (admin tokens)"),
)
class MessageTemplateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LocationViewSet):
    serializer_class = MessageTemplateSerializer
    permission_classes = [HasLocationToken, AdminTokenForChanges]
    managed_name = "templates"
    filter_serializer_class = TemplateFilters
    ordering = ("id",)

    def get_queryset(self):
        return templates_for(self.location)

    def apply_filters(self, queryset, params):
        if "q" in params:
            queryset = queryset.filter(Q(name__icontains=params["q"]) | Q(shortcut__icontains=params["q"]))
        return queryset

    def _actor(self):
        return self.request.user if self.request.user.is_authenticated else None

    def create(self, request):
        serializer = MessageTemplateWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        template = template_create(location=self.location, name=data.get("name", ""), body=data.get("body", ""),
                                   shortcut=data.get("shortcut", ""), created_by=self._actor())
        return Response(MessageTemplateSerializer(template).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        template = self.get_object()
        serializer = MessageTemplateWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        template = template_update(template=template, **serializer.validated_data)
        return Response(MessageTemplateSerializer(template).data)

    def destroy(self, request, pk=None):
        template_delete(template=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=TemplateRenderSerializer, responses=TemplateRenderedSerializer,
                   summary="The template's text for one conversation (merge fields filled in)")
    @action(detail=True, methods=["post"], url_path="render")
    def render_for(self, request, pk=None):
        template = self.get_object()
        serializer = TemplateRenderSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        conversation = serializer.validated_data["conversation"]
        text = template_render(template, contact=conversation.contact, account=conversation.account, agent=self._actor())
        return Response({"text": text})


# --- scheduled messages ------------------------------------------------------------------------
class _LocationTimes:
    """Times read (when given without an offset) and answered in the location's time zone."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        location = self.context.get("location")
        zone = zone_for(location=location) if location is not None else None
        for field in self.fields.values():
            if isinstance(field, serializers.DateTimeField) and zone is not None:
                field.timezone = zone


class ScheduledMessageSerializer(_LocationTimes, serializers.ModelSerializer):
    class Meta:
        model = ScheduledMessage
        fields = ["id", "conversation", "account", "text", "send_at", "at_business_hours", "status", "error", "message",
                  "created_by", "created_at", "updated_at"]
        extra_kwargs = {
            "text": {"help_text": "Merge fields are filled in when it leaves"},
            "status": {"help_text": "pending (scheduled), sent, cancelled or failed (`error` says why)"},
            "message": {"help_text": "The message it became once sent"},
        }


class ScheduledCreateSerializer(_LocationTimes, serializers.Serializer):
    text = serializers.CharField(max_length=4000)
    send_at = serializers.DateTimeField(required=False, allow_null=True,
                                        help_text="When it leaves; without an offset, in the location's time zone")
    at_business_hours = serializers.BooleanField(required=False, default=False,
                                                 help_text="Instead of send_at: when the account's business hours next begin")
    account = LocationObjectField(queryset=Account.objects.filter(archived_at__isnull=True), required=False, allow_null=True,
                                  help_text="Leave through this account of the contact (default: the conversation's)")

    def validate(self, data):
        if not data.get("at_business_hours") and not data.get("send_at"):
            raise serializers.ValidationError({"send_at": ["Give send_at, or at_business_hours: true."]})
        return data


class ScheduledUpdateSerializer(_LocationTimes, serializers.Serializer):
    text = serializers.CharField(max_length=4000, required=False)
    send_at = serializers.DateTimeField(required=False, allow_null=True, help_text="A new time (keeps the time when absent)")
    at_business_hours = serializers.BooleanField(required=False, default=False,
                                                 help_text="Move it to when the account's business hours next begin")


class ScheduledFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=ScheduledMessage.Status.choices, required=False)
    conversation = id_filter()


class _ScheduledBase(LocationViewSet):
    serializer_class = ScheduledMessageSerializer
    ordering_fields = ("id", "send_at")

    def _rows(self):
        qs = ScheduledMessage.objects.filter(location=self.location)
        if self.agent_user_id is not None:
            qs = qs.filter(Q(conversation__assignee_id=self.agent_user_id) | Q(created_by_id=self.agent_user_id))
        return qs

    def _actor(self):
        return self.request.user if self.request.user.is_authenticated else None

    def _present(self, scheduled, code=200):
        fresh = ScheduledMessage.objects.get(pk=scheduled.pk)
        return Response(ScheduledMessageSerializer(fresh, context=self.get_serializer_context()).data, status=code)


@extend_schema_view(
    list=extend_schema(summary="A conversation's scheduled messages (every status)"),
    create=extend_schema(request=ScheduledCreateSerializer, responses={201: ScheduledMessageSerializer},
                         parameters=[IDEMPOTENCY_KEY_PARAMETER], summary="Schedule a reply in the conversation"),
)
class ConversationScheduledViewSet(mixins.ListModelMixin, _ScheduledBase):
    """Routed as /conversations/{conversation_pk}/scheduled/."""

    def _conversation(self) -> Conversation:
        pk = id_param(self.kwargs.get("conversation_pk"))
        conversation = Conversation.objects.filter(location=self.location, pk=pk).select_related("contact", "account").first() if pk else None
        if conversation is None:
            raise NotFound()
        return conversation

    def get_queryset(self):
        conversation = self._conversation()
        if self.agent_user_id is not None and conversation.assignee_id != self.agent_user_id:
            raise PermissionDenied(AGENT_SCOPE)
        return ScheduledMessage.objects.filter(location=self.location, conversation=conversation)

    def create(self, request, conversation_pk=None):
        conversation = self._conversation()
        if self.agent_user_id is not None and conversation.assignee_id != self.agent_user_id:
            raise PermissionDenied(AGENT_SCOPE)
        serializer = ScheduledCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        def schedule():
            scheduled = scheduled_message_create(
                conversation=conversation, text=data["text"], send_at=data.get("send_at"), at_business_hours=data["at_business_hours"],
                account=data.get("account"), created_by=self._actor())
            fresh = ScheduledMessage.objects.get(pk=scheduled.pk)
            return status.HTTP_201_CREATED, ScheduledMessageSerializer(fresh, context=self.get_serializer_context()).data

        return idempotent(request, schedule)  # a retried request schedules nothing twice


@extend_schema_view(
    list=extend_schema(parameters=[ScheduledFilters], summary="Scheduled messages, filtered"),
    partial_update=extend_schema(request=ScheduledUpdateSerializer, responses=ScheduledMessageSerializer,
                                 summary="Change the text or time of a scheduled message that has not left"),
)
class ScheduledMessageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ScheduledBase):
    filter_serializer_class = ScheduledFilters

    def get_queryset(self):
        return self._rows()

    def apply_filters(self, queryset, params):
        for name in ("status", "conversation"):
            if name in params:
                queryset = queryset.filter(**{name: params[name]})
        return queryset

    def _changeable(self) -> ScheduledMessage:
        scheduled = self.get_object()
        if not can_change(scheduled, user=self._actor(), is_admin=self.is_admin):
            raise PermissionDenied(NOT_YOURS)
        return scheduled

    def partial_update(self, request, pk=None):
        scheduled = self._changeable()
        serializer = ScheduledUpdateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        scheduled_message_update(scheduled=scheduled, text=data.get("text"), send_at=data.get("send_at"),
                                 at_business_hours=data["at_business_hours"])
        return self._present(scheduled)

    @extend_schema(request=None, responses=ScheduledMessageSerializer, summary="Cancel a scheduled message that has not left")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._present(scheduled_message_cancel(scheduled=self._changeable()))
