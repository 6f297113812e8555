from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from accounts.models import ApiToken, Membership


class LocationTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <key>`; the token is bound to one location (request.auth)."""

    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace").split()
        if not header or header[0] != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Token <key>'.")
        token = ApiToken.objects.select_related("location", "user").for_key(header[1])
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.user_id is not None:
            role = Membership.objects.filter(user_id=token.user_id, location_id=token.location_id).values_list("role", flat=True).first()
            if role is None:
                # a member's key speaks for that member: gone from the location, the key is dead
                raise exceptions.AuthenticationFailed("This key belonged to a member who is no longer in the location.")
            token._api_is_admin = role == Membership.Role.ADMIN  # read by api_base.token_is_admin
        if token.last_used_at is None or (timezone.now() - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        return (token.user or AnonymousUser(), token)

    def authenticate_header(self, request):
        return self.keyword


class HasLocationToken(permissions.BasePermission):
    message = "Authentication with a location API token is required."

    def has_permission(self, request, view):
        return isinstance(request.auth, ApiToken)


class LocationTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api_auth.LocationTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Token <key>"}
