"""/api/v1/accounts/ (connected numbers) and /api/v1/users/ (members and their availability)."""
from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from accounts.models import Account, Membership
from accounts.providers import backend_choices, backends_for_kind, get_provider
from accounts.services import (
    account_archive,
    account_connect,
    account_create,
    account_disconnect,
)
from accounts.api_auth import HasLocationToken
from whatsnap import events
from whatsnap.api_base import AdminTokenForWrites, LocationViewSet
from whatsnap.phones import normalise_e164


class WebhookUrlsSerializer(serializers.Serializer):
    inbound = serializers.URLField()
    status = serializers.URLField()


class AccountSerializer(serializers.ModelSerializer):
    tag = serializers.SerializerMethodField(help_text="The account's own tag, carried by every contact who writes to it")
    webhook_urls = serializers.SerializerMethodField(help_text="Where the backend must post inbound messages and statuses")

    class Meta:
        model = Account
        fields = ["id", "name", "slug", "kind", "backend", "phone_number", "status", "last_error", "tag", "webhook_urls", "created_at"]

    def get_tag(self, obj) -> str | None:
        tag = getattr(obj, "tag", None)
        return tag.name if tag else None

    @extend_schema_field(WebhookUrlsSerializer)
    def get_webhook_urls(self, obj) -> dict[str, str]:
        return obj.webhook_urls()


# Documented as "AccountRequest": the request side of the Account component (the enum of
# `kind` is then named once).
@extend_schema_serializer(component_name="Account")
class AccountCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Account.Kind.choices)
    name = serializers.CharField(max_length=60, help_text="Its tag will be whatsnap-account-<slug of the name>")
    slug = serializers.SlugField(max_length=50, required=False, help_text="Defaults to the slug of the name")
    phone_number = serializers.CharField(max_length=30, required=False, allow_blank=True, help_text="E.164, e.g. +14155550123")
    backend = serializers.ChoiceField(
        choices=backend_choices(), required=False,
        help_text="Defaults to the real backend of the kind (twilio for twilio, ...); 'sandbox' simulates it.",
    )
    credentials = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=500), required=False, write_only=True,
        help_text="Backend secrets, stored encrypted. twilio: account_sid, auth_token (optional api_key_sid, "
        "api_key_secret for the REST calls; phone_number may be left out when the Twilio account has one number); bluebubbles: server_url, "
        "password; android_sms: username, password, signing_key.",
    )
    config = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=500), required=False,
        help_text="Non-secret backend settings, e.g. twilio: messaging_service_sid; android_sms: mode, device_url.",
    )

    def validate_phone_number(self, value):
        if not value:
            return ""
        try:
            return normalise_e164(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate(self, data):
        kind = data["kind"]
        allowed = backends_for_kind(kind)
        backend = data.setdefault("backend", allowed[0])
        if backend not in allowed:
            raise serializers.ValidationError({"backend": [f"The {backend} backend cannot serve {kind} accounts (use {', '.join(allowed)})."]})
        provider = get_provider(backend)
        credentials, config = data.setdefault("credentials", {}), data.get("config", {})
        missing = [name for name in provider.required_credentials if not credentials.get(name)]
        if missing:  # secrets it needs to connect (stored encrypted, never shown again)
            raise serializers.ValidationError({"credentials": [f"The {backend} backend needs {', '.join(missing)}."]})
        problems = provider.address_problems(credentials=credentials, config=config)
        if problems:  # the device's address: a private one only when the operator allows it
            raise serializers.ValidationError({setting: [problem] for setting, problem in problems.items()})
        problems = provider.settings_problems(kind=kind, phone_number=data.get("phone_number", ""), credentials=credentials, config=config)
        if problems:
            raise serializers.ValidationError({field: [problem] for field, problem in problems.items()})
        return data


@extend_schema_view(
    list=extend_schema(summary="Accounts of the location"),
    create=extend_schema(request=AccountCreateSerializer, responses={201: AccountSerializer},
                         summary="Create an account (with its tag) and connect it"),
    destroy=extend_schema(summary="Delete (archive) an account; its contacts and conversations stay"),
)
class AccountViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LocationViewSet):
    serializer_class = AccountSerializer
    permission_classes = [HasLocationToken, AdminTokenForWrites]
    managed_name = "accounts"
    ordering_fields = ("id", "created_at")

    def get_queryset(self):
        return Account.objects.filter(location=self.location, archived_at__isnull=True).select_related("tag")

    def create(self, request):
        serializer = AccountCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        account = account_create(location=self.location, kind=data["kind"], backend=data["backend"], name=data["name"],
                                 slug=data.get("slug"), phone_number=data.get("phone_number", ""),
                                 credentials=data["credentials"], config=data.get("config", {}))
        account_connect(account=account)  # outside the creating transaction: it may call the backend
        return Response(AccountSerializer(self._reload(account)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=AccountSerializer, summary="Disconnect the account's session")
    @action(detail=True, methods=["post"])
    def disconnect(self, request, pk=None):
        account = self.get_object()
        account_disconnect(account=account, reason="disconnected through the API")
        return Response(AccountSerializer(self._reload(account)).data)

    def destroy(self, request, pk=None):
        account_archive(account=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _reload(self, account):
        return Account.objects.select_related("tag").get(pk=account.pk)


# --- users: the location's members -------------------------------------------------------------
class MemberSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="user_id", read_only=True, help_text="The user's id (used for assignee)")
    username = serializers.CharField(source="user.username", read_only=True)
    full_name = serializers.SerializerMethodField()

    class Meta:
        model = Membership
        fields = ["id", "username", "full_name", "role", "availability", "capacity", "timezone"]
        read_only_fields = ["role", "timezone"]

    def get_full_name(self, obj) -> str:
        return obj.user.get_full_name()


class MemberUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Membership
        fields = ["availability", "capacity"]
        extra_kwargs = {"capacity": {"max_value": 10_000}}


class MemberFilters(serializers.Serializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices, required=False)
    availability = serializers.ChoiceField(choices=Membership.Availability.choices, required=False)


@extend_schema_view(
    list=extend_schema(parameters=[MemberFilters], summary="Members of the location"),
    partial_update=extend_schema(request=MemberUpdateSerializer, responses=MemberSerializer,
                                 summary="Set availability (any token for its own user) or capacity (admin tokens)"),
)
class MemberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LocationViewSet):
    serializer_class = MemberSerializer
    lookup_field = "user_id"
    lookup_url_kwarg = "id"
    ordering = ("user_id",)
    ordering_fields = ("user_id",)
    filter_serializer_class = MemberFilters

    def get_queryset(self):
        return Membership.objects.filter(location=self.location).select_related("user")

    def apply_filters(self, queryset, params):
        return queryset.filter(**params)

    def partial_update(self, request, id=None):
        member = self.get_object()
        serializer = MemberUpdateSerializer(member, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        if not self.is_admin:
            if member.user_id != request.auth.user_id:
                raise PermissionDenied("Agent-scoped tokens can only set their own user's availability.")
            if "capacity" in serializer.validated_data:
                raise PermissionDenied("Only admin tokens can change a member's capacity.")
        with transaction.atomic():
            previous = {name: getattr(member, name) for name in serializer.validated_data}
            serializer.save()
            changed = sorted(name for name, value in previous.items() if getattr(member, name) != value)
            if changed:  # routing gives waiting conversations to a member online again or with more capacity
                events.record("member.changed", location_id=member.location_id, membership=member, changed=changed)
        return Response(MemberSerializer(member).data)
