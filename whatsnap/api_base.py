"""API conventions: one error shape, permissions by token kind, the base viewset (documented
errors, filters validated by a serializer, safe id lookups), ids in bodies scoped to the
location, idempotent POSTs. (Pagination and throttling live in api_policies.py, which must not
import rest_framework.views: DRF settings import them while it loads.)"""
import hashlib
import json
from functools import wraps

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, permissions, serializers, viewsets
from rest_framework.filters import OrderingFilter
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from whatsnap.errors import ApplicationError
from whatsnap.idempotency import idempotent_call
from whatsnap.params import id_param

MAX_ID = 2**63 - 1  # larger ids cannot exist; looking them up would overflow the database


# --- one error shape ---------------------------------------------------------------------------
def exception_handler(exc, context):
    """One error shape: {"detail": ..., "code": ..., "errors": {field: [..]}}."""
    if isinstance(exc, ApplicationError):
        body = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body["errors"] = {exc.field: [exc.message]}
        body.update(exc.extra)
        return Response(body, status=400)
    if isinstance(exc, DjangoValidationError):  # a service's full_clean()
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response({"detail": "Invalid input.", "code": "invalid", "errors": errors}, status=400)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
        response.data = {"detail": "Invalid input.", "code": "invalid", "errors": errors}
    elif isinstance(response.data, dict) and "detail" in response.data:
        detail = response.data["detail"]
        response.data = {"detail": str(detail), "code": getattr(detail, "code", "error")}
    return response


class ApiErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, for people")
    code = serializers.CharField(help_text="What went wrong, for programs (e.g. invalid, not_found, throttled)")
    errors = serializers.DictField(required=False, help_text="Field name -> list of messages")

    class Meta:
        ref_name = "Error"


ERROR_RESPONSES = {
    "400": "Invalid input or refused by a business rule",
    "401": "Missing or invalid token",
    "403": "The token may not do this",
    "404": "No such object in this location",
    "429": "Too many requests for this token",
}


class WhatSnapAutoSchema(AutoSchema):
    """Every operation documents the error responses the conventions can produce."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, description in ERROR_RESPONSES.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(response=ApiErrorSerializer, description=description), code, direction=direction
                )
        return responses


# --- permissions -------------------------------------------------------------------------------
def token_is_admin(request) -> bool:
    """Admin tokens: without a user, or with the user of an admin member (cached per request)."""
    token = request.auth
    if getattr(token, "_api_is_admin", None) is None:
        token._api_is_admin = token.is_admin
    return token._api_is_admin


class AdminTokenForWrites(permissions.BasePermission):
    """Every token of the location reads; only admin tokens change (view.managed_name)."""

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS or token_is_admin(request):
            return True
        self.message = f"Agent-scoped tokens cannot manage {view.managed_name}; use an admin token."
        return False


class AdminTokenOnly(permissions.BasePermission):
    def has_permission(self, request, view):
        if token_is_admin(request):
            return True
        self.message = f"Only admin tokens can see or manage {view.managed_name}."
        return False


# --- the base viewset --------------------------------------------------------------------------
def _schema_safe(get_queryset):
    """drf-spectacular calls get_queryset() on a fake view without a token, only to learn the
    model: answer an empty queryset of the serializer's model there."""
    @wraps(get_queryset)
    def guarded(self):
        if getattr(self, "swagger_fake_view", False):
            return self.get_serializer_class().Meta.model.objects.none()
        return get_queryset(self)

    guarded.schema_safe = True
    return guarded


class LocationViewSet(viewsets.GenericViewSet):
    """Objects of the token's location only (others are 404). List filters are validated by
    `filter_serializer_class` and applied by `apply_filters`; `ordering` is accepted for
    `ordering_fields` (unique, never null: the cursor pagination needs that).

    A subclass's get_queryset() may use the token freely (self.location, agent_user_id): the
    base class guards it for schema generation, so no viewset repeats that guard."""

    schema = WhatSnapAutoSchema()
    parser_classes = [JSONParser]
    filter_backends = [OrderingFilter]
    ordering = ("-id",)
    ordering_fields = ("id",)
    filter_serializer_class = None
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    managed_name = "this resource"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("get_queryset")
        if own is not None and not getattr(own, "schema_safe", False):
            cls.get_queryset = _schema_safe(own)

    @property
    def location(self):
        return self.request.auth.location

    @property
    def is_admin(self) -> bool:
        return token_is_admin(self.request)

    @property
    def agent_user_id(self) -> int | None:
        """The user an agent-scoped token is limited to; None for admin tokens."""
        return None if self.is_admin else self.request.auth.user_id

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if self.action == "list" and self.filter_serializer_class is not None:
            params = self.filter_serializer_class(data=self.request.query_params)
            params.is_valid(raise_exception=True)
            wanted = {k: v for k, v in params.validated_data.items() if v is not None and v != ""}
            queryset = self.apply_filters(queryset, wanted)
        return queryset

    def apply_filters(self, queryset, params: dict):
        return queryset

    def get_object(self):
        value = str(self.kwargs.get(self.lookup_url_kwarg or self.lookup_field, ""))
        if id_param(value) is None:
            raise exceptions.NotFound()
        return super().get_object()

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "location": getattr(self.request.auth, "location", None)}


def id_filter(**kwargs):
    """An optional integer id in a query string."""
    return serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID, **kwargs)


class LocationObjectField(serializers.PrimaryKeyRelatedField):
    """The id of an object of the request's location (`location_field` names the path to it);
    another location's id reads as "does not exist"."""

    def __init__(self, *, location_field: str = "location", **kwargs):
        self.location_field = location_field
        super().__init__(**kwargs)

    def get_queryset(self):
        return super().get_queryset().filter(**{self.location_field: self.context["location"]})

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, str)) or id_param(data) is None:
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)


# --- idempotent POSTs --------------------------------------------------------------------------
IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="A unique string per intended action (e.g. a UUID). A retried request with the same key "
    "answers the first response (header Idempotent-Replayed: true) instead of acting twice; the same key "
    "with a different request is refused. Keys are kept 24 hours per token.",
)


def idempotent(request, produce) -> Response:
    """Answer `produce()` -> (status, body) once per `Idempotency-Key` of the token."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        status, body = produce()
        return Response(body, status=status)
    key = key.strip()
    if not key or len(key) > 255 or "\x00" in key:
        raise exceptions.ValidationError({"Idempotency-Key": ["Use 1 to 255 characters."]})
    body_json = json.dumps(request.data, sort_keys=True, cls=DjangoJSONEncoder, default=str)
    fingerprint = hashlib.sha256(f"{request.method} {request.path}\n{body_json}".encode()).hexdigest()

    def produce_json():
        status, body = produce()
        return status, json.loads(json.dumps(body, cls=DjangoJSONEncoder))

    status, body, replayed = idempotent_call(token=request.auth, key=key, fingerprint=fingerprint, produce=produce_json)
    response = Response(body, status=status)
    response["Idempotent-Replayed"] = "true" if replayed else "false"
    return response
