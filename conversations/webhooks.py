"""POST /webhooks/<kind>/<account id>/ — the ack path. Verify, store, answer; no more."""
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.base import WebhookForbidden, WebhookMalformed
from conversations.services import webhook_events_record

logger = logging.getLogger(__name__)

TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@csrf_exempt
@require_POST
def webhook(request, kind: str, account_id: int):
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    limit = settings.WHATSAPP_WEBHOOK_MAX_BYTES if kind == "whatsapp" else settings.WEBHOOK_MAX_BYTES
    if length <= limit:  # the header can be absent (chunked) or wrong: measure what came
        try:
            length = len(request.body)
        except RequestDataTooBig:
            length = limit + 1
    if length > limit:
        logger.warning("webhook for account %s refused: %s bytes", account_id, length)
        return JsonResponse({"detail": f"Body larger than {limit} bytes.", "code": "too_large"}, status=413)
    account = Account.objects.select_related("location", "tag").filter(pk=account_id, archived_at__isnull=True).first()
    if account is None or account.webhook_kind != kind:
        return JsonResponse({"detail": "No such account.", "code": "not_found"}, status=404)
    try:
        events = get_provider(account.backend).parse_webhook(account, request)
    except WebhookForbidden as exc:
        logger.warning("forged or unsigned webhook for account %s refused: %s", account_id, exc)
        return JsonResponse({"detail": "Signature verification failed.", "code": "forbidden"}, status=403)
    except WebhookMalformed as exc:
        logger.warning("malformed webhook for account %s: %s", account_id, exc)
        return JsonResponse({"detail": str(exc), "code": "malformed"}, status=400)
    new = webhook_events_record(account=account, events=events)
    if account.backend == "twilio":
        return HttpResponse(TWIML_EMPTY, content_type="text/xml")
    return JsonResponse({"accepted": len(events), "new": new})
