"""/api/v1/webhooks/ (subscriptions) and /api/v1/webhook-deliveries/ (what was sent, every
attempt's answer, replay). Admin tokens only: subscriptions carry signing secrets."""
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from hooks.models import Event, WebhookAttempt, WebhookDelivery, WebhookSubscription
from hooks.services import (
    hook_delivery_replay,
    hook_subscription_create,
    hook_subscription_delete,
    hook_subscription_rotate_secret,
    hook_subscription_update,
)
from accounts.api_auth import HasLocationToken
from whatsnap.api_base import AdminTokenOnly, LocationViewSet, id_filter

EVENTS_HELP = "Events to receive: " + ", ".join(Event.values)


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=Event.choices), help_text=EVENTS_HELP)

    class Meta:
        model = WebhookSubscription
        fields = ["id", "url", "events", "description", "is_active", "created_at"]


class WebhookSubscriptionCreatedSerializer(WebhookSubscriptionSerializer):
    secret = serializers.CharField(
        help_text="Signing secret, shown only now (and when rotated). Each delivery carries "
        "X-WhatSnap-Timestamp (Unix seconds) and X-WhatSnap-Signature: "
        "sha256=<hex HMAC-SHA256(secret, '<timestamp>.' + raw body)>."
    )

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = [*WebhookSubscriptionSerializer.Meta.fields, "secret"]


class WebhookSubscriptionWriteSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(child=serializers.ChoiceField(choices=Event.choices), min_length=1, max_length=20,
                                   help_text=EVENTS_HELP)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)


@extend_schema_view(
    create=extend_schema(request=WebhookSubscriptionWriteSerializer, responses={201: WebhookSubscriptionCreatedSerializer},
                         summary="Subscribe a URL to events (the answer holds the signing secret)"),
    partial_update=extend_schema(request=WebhookSubscriptionWriteSerializer, responses=WebhookSubscriptionSerializer),
)
class WebhookSubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LocationViewSet):
    serializer_class = WebhookSubscriptionSerializer
    permission_classes = [HasLocationToken, AdminTokenOnly]
    managed_name = "webhook subscriptions"

    def get_queryset(self):
        return WebhookSubscription.objects.filter(location=self.location)

    def create(self, request):
        serializer = WebhookSubscriptionWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = hook_subscription_create(location=self.location, **serializer.validated_data)
        body = {**WebhookSubscriptionSerializer(subscription).data, "secret": subscription.secret}
        return Response(body, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        subscription = self.get_object()
        serializer = WebhookSubscriptionWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        hook_subscription_update(subscription=subscription, **serializer.validated_data)
        return Response(WebhookSubscriptionSerializer(subscription).data)

    def destroy(self, request, pk=None):
        hook_subscription_delete(subscription=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=WebhookSubscriptionCreatedSerializer,
                   summary="Replace the signing secret (the answer holds the new one)")
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        subscription = self.get_object()
        secret = hook_subscription_rotate_secret(subscription=subscription)
        return Response({**WebhookSubscriptionSerializer(subscription).data, "secret": secret})


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["at", "status_code", "duration_ms", "error", "response_excerpt"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event = serializers.CharField(read_only=True, help_text=EVENTS_HELP.replace("to receive", "one of"))
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "subscription", "event", "event_id", "payload", "status", "attempts", "next_attempt_at",
                  "last_status_code", "last_error", "replay_of", "created_at", "delivered_at", "attempt_log"]


class WebhookDeliveryFilters(serializers.Serializer):
    subscription = id_filter()
    event = serializers.ChoiceField(choices=Event.choices, required=False)
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices, required=False)


@extend_schema_view(list=extend_schema(parameters=[WebhookDeliveryFilters], summary="Deliveries, newest first"))
class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LocationViewSet):
    serializer_class = WebhookDeliverySerializer
    permission_classes = [HasLocationToken, AdminTokenOnly]
    managed_name = "webhook deliveries"
    filter_serializer_class = WebhookDeliveryFilters

    def get_queryset(self):
        return WebhookDelivery.objects.filter(location=self.location).select_related("subscription").prefetch_related("attempt_log")

    def apply_filters(self, queryset, params):
        return queryset.filter(**params)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer},
                   summary="Send the event again, as a new delivery with the same event id")
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        replay = hook_delivery_replay(delivery=self.get_object())
        return Response(WebhookDeliverySerializer(replay).data, status=status.HTTP_202_ACCEPTED)
