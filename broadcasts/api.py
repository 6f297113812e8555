"""/api/v1/broadcasts/: compose (now, at a time, at the account's next business hours, or as a
draft), list, read with counts, edit until it starts, its recipients, start, pause, resume,
cancel. Every token reads; only admin tokens write (as on the pages)."""
from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api_auth import HasLocationToken
from accounts.models import Account
from broadcasts import services
from broadcasts.models import Broadcast, BroadcastRecipient
from broadcasts.selectors import broadcasts_for, recipient_counts, recipients_of
from whatsnap.api_base import (IDEMPOTENCY_KEY_PARAMETER, AdminTokenForWrites, LocationObjectField, LocationViewSet, id_filter,
                               idempotent)

R = BroadcastRecipient.Status


class BroadcastCountsSerializer(serializers.Serializer):
    pending = serializers.IntegerField(help_text="Not handed to the account's queue yet")
    queued = serializers.IntegerField()
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    read = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField(help_text="Opted out, unreachable, or cancelled before sending (see each recipient's reason)")
    total = serializers.IntegerField()


class BroadcastSerializer(serializers.ModelSerializer):
    counts = serializers.SerializerMethodField()

    class Meta:
        model = Broadcast
        fields = ["id", "name", "text", "account", "match", "tag_ids", "status", "pause_kind", "pause_reason", "scheduled_at",
                  "at_business_hours", "waiting_until", "created_by", "created_at", "started_at", "finished_at", "counts"]
        extra_kwargs = {
            "account": {"help_text": "The account it leaves through; null: each contact's own account"},
            "waiting_until": {"help_text": "An account's daily cap is reached: it goes on at this time"},
            "pause_reason": {"help_text": "Why it is paused (or was cancelled)"},
        }

    @extend_schema_field(BroadcastCountsSerializer)
    def get_counts(self, broadcast) -> dict:
        return {k: v for k, v in recipient_counts(broadcast).items() if k != "done"}


class BroadcastWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    text = serializers.CharField(max_length=4000, help_text="Merge fields such as {{first_name|there}} are filled in per contact")
    tag_ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1, max_length=50,
                                    help_text="Ids of the location's tags")
    match = serializers.ChoiceField(choices=Broadcast.Match.choices, default=Broadcast.Match.ANY,
                                    help_text="any: contacts with any of the tags; all: with all of them")
    account = LocationObjectField(queryset=Account.objects.filter(archived_at__isnull=True), allow_null=True, required=False,
                                  help_text="Send through this account; null or absent: each contact's own account")
    scheduled_at = serializers.DateTimeField(required=False, allow_null=True, help_text="Start at this time (ISO 8601 with offset)")
    at_business_hours = serializers.BooleanField(default=False, help_text="Start at the account's next business hours")
    start = serializers.BooleanField(default=False, help_text="Start at once (without a time)")


class BroadcastEditSerializer(BroadcastWriteSerializer):
    """The fields to change of a draft or scheduled broadcast."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, partial=True, **kwargs)


class BroadcastRecipientSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="contact.name", read_only=True)
    phone = serializers.CharField(source="contact.phone", read_only=True)

    class Meta:
        model = BroadcastRecipient
        fields = ["id", "contact", "name", "phone", "account", "status", "reason", "message", "queued_at", "updated_at"]


class BroadcastFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=Broadcast.Status.choices, required=False)
    account = id_filter()


class RecipientFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=R.choices, required=False)


@extend_schema_view(
    list=extend_schema(parameters=[BroadcastFilters], summary="Broadcasts, newest first"),
    retrieve=extend_schema(summary="A broadcast with its recipients counted by status"),
    create=extend_schema(request=BroadcastWriteSerializer, responses={201: BroadcastSerializer}, parameters=[IDEMPOTENCY_KEY_PARAMETER],
                         summary="Compose a broadcast (a draft, scheduled, or started at once)",
                         description="Recipients are the contacts carrying the tags when it starts; opted-out contacts and "
                         "those no account can reach are skipped with the reason. It leaves through each account's paced "
                         "queue within the account's daily cap."),
    partial_update=extend_schema(request=BroadcastEditSerializer, responses=BroadcastSerializer,
                                 summary="Edit a draft or scheduled broadcast (a time schedules it; null makes it a draft)"),
)
class BroadcastViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LocationViewSet):
    serializer_class = BroadcastSerializer
    permission_classes = [HasLocationToken, AdminTokenForWrites]
    managed_name = "broadcasts"
    filter_serializer_class = BroadcastFilters

    def get_queryset(self):
        return broadcasts_for(self.location)

    def apply_filters(self, queryset, params):
        for name in ("status", "account"):
            if name in params:
                queryset = queryset.filter(**{name: params[name]})
        return queryset

    def create(self, request):
        serializer = BroadcastWriteSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return idempotent(request, lambda: self._create(serializer.validated_data))

    def _create(self, data) -> tuple[int, dict]:
        start = data.pop("start")
        author = self.request.user if self.request.user.is_authenticated else None
        with transaction.atomic():  # a start that is refused leaves no draft behind
            broadcast = services.broadcast_create(location=self.location, created_by=author, **data)
            if start and broadcast.status == Broadcast.Status.DRAFT:
                services.broadcast_start(broadcast=broadcast)
        return status.HTTP_201_CREATED, self._present(broadcast)

    def partial_update(self, request, pk=None):
        broadcast = self.get_object()
        serializer = BroadcastEditSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        changes = {k: v for k, v in serializer.validated_data.items() if k != "start" and k in request.data}
        services.broadcast_update(broadcast=broadcast, **changes)
        return Response(self._present(broadcast))

    @extend_schema(parameters=[RecipientFilters], responses=BroadcastRecipientSerializer(many=True),
                   summary="Its recipients (with why each skipped one was skipped)")
    @action(detail=True, methods=["get"])
    def recipients(self, request, pk=None):
        broadcast = self.get_object()
        params = RecipientFilters(data=request.query_params)
        params.is_valid(raise_exception=True)
        rows = recipients_of(broadcast, status=params.validated_data.get("status", "")).order_by("-id")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(BroadcastRecipientSerializer(page, many=True).data)

    def _verb(self, do) -> Response:
        broadcast = self.get_object()
        do(broadcast)
        return Response(self._present(broadcast))

    @extend_schema(request=None, responses=BroadcastSerializer, summary="Start a draft or scheduled broadcast now")
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        return self._verb(lambda b: services.broadcast_start(broadcast=b))

    @extend_schema(request=None, responses=BroadcastSerializer, summary="Pause a broadcast that is sending")
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        user = request.user if request.user.is_authenticated else None
        return self._verb(lambda b: services.broadcast_pause_by_hand(broadcast=b, actor=user))

    @extend_schema(request=None, responses=BroadcastSerializer, summary="Resume a paused broadcast")
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._verb(lambda b: services.broadcast_resume(broadcast=b))

    @extend_schema(request=None, responses=BroadcastSerializer,
                   summary="Cancel: nothing more is sent (messages still in an account's queue are withdrawn)")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._verb(lambda b: services.broadcast_cancel(broadcast=b, reason="Cancelled through the API."))

    def _present(self, broadcast) -> dict:
        return BroadcastSerializer(broadcasts_for(self.location).get(pk=broadcast.pk)).data
