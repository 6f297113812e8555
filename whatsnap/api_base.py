from rest_framework import pagination, throttling
from rest_framework.views import exception_handler as drf_exception_handler

from whatsnap.errors import ApplicationError


class DefaultCursorPagination(pagination.CursorPagination):
    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 200


class TokenRateThrottle(throttling.SimpleRateThrottle):
    scope = "token"

    def get_cache_key(self, request, view):
        if request.auth is None:
            return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
        return self.cache_format % {"scope": self.scope, "ident": f"token-{request.auth.pk}"}


def exception_handler(exc, context):
    """One error shape: {"detail": ..., "code": ..., "errors": {field: [..]}}."""
    from rest_framework.exceptions import ValidationError
    from rest_framework.response import Response

    if isinstance(exc, ApplicationError):
        body = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body["errors"] = {exc.field: [exc.message]}
        body.update(exc.extra)
        return Response(body, status=400)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ValidationError):
        response.data = {"detail": "Invalid input.", "code": "invalid", "errors": response.data}
    elif isinstance(response.data, dict) and "detail" in response.data:
        detail = response.data["detail"]
        response.data = {"detail": str(detail), "code": getattr(detail, "code", "error")}
    return response
