"""API conventions: one error shape. (Pagination and throttling live in api_policies.py,
which must not import rest_framework.views: DRF settings import them while it loads.)"""
from rest_framework.views import exception_handler as drf_exception_handler

from whatsnap.errors import ApplicationError


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
