"""POST /webhooks/<kind>/<account id>/ — the ack path. Verify, store, answer; no more."""
import json
import logging

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.alerts import account_alert_heard_from
from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.base import Unfiled, WebhookForbidden, WebhookMalformed
from accounts.services import account_webhook_refused
from conversations.services import webhook_events_record
from whatsnap.request_body import body_within
from whatsnap.rows import RowLoader

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def webhook(request, kind: str, account_id: int):
    # The account first: an anonymous caller naming no account gets 404 before any body is read.
    account = _account(account_id)
    if account is None or account.webhook_kind != kind:
        return JsonResponse({"detail": "No such account.", "code": "not_found"}, status=404)
    provider = get_provider(account.backend)
    limit = provider.webhook_max_bytes()
    if not body_within(request, limit):
        logger.warning("webhook for account %s refused: body over %s bytes", account_id, limit)
        return JsonResponse({"detail": f"Body larger than {limit} bytes.", "code": "too_large"}, status=413)
    try:
        events = provider.parse_webhook(account, request)
    except WebhookForbidden as exc:
        logger.warning("forged or unsigned webhook for account %s refused: %s", account_id, exc)
        account_webhook_refused(account=account, reason=str(exc))
        return JsonResponse({"detail": "Signature verification failed.", "code": "forbidden"}, status=403)
    except WebhookMalformed as exc:
        logger.warning("malformed webhook for account %s: %s", account_id, exc)
        return JsonResponse({"detail": str(exc), "code": "malformed"}, status=400)
    except RecursionError:  # JSON nested hundreds deep: no upstream sends it
        return _too_deep(account_id)
    accepted = len(events)
    if not events:
        # Nothing acknowledged disappears: a webhook the backend found nothing in is kept too.
        events = [Unfiled(reason=f"nothing to file in this {provider.label} webhook", envelope=_envelope_of(request))]
    try:
        new = webhook_events_record(account=account, events=events)
    except RecursionError:  # an unfiled body nested hundreds deep (what is filed is cut at 64 levels)
        return _too_deep(account_id)
    account_alert_heard_from(account=account)  # a silent account's alert clears
    return provider.webhook_answer(accepted=accepted, new=new)


def _too_deep(account_id: int) -> JsonResponse:
    logger.warning("malformed webhook for account %s: nested too deeply", account_id)
    return JsonResponse({"detail": "Body nested too deeply.", "code": "malformed"}, status=400)


_ACCOUNTS = RowLoader(Account, "id = %s AND archived_at IS NULL")


def _account(account_id: int) -> Account | None:
    """The account a webhook names, unless archived: one indexed row, no join (the ack reads
    neither its location nor its tag), read fresh on every request (a rotated secret or an
    archive takes effect at once) with a statement prepared once (whatsnap/rows.py)."""
    return _ACCOUNTS.first([account_id])


def _envelope_of(request) -> dict:
    """A verified body as a dict to keep: JSON, else form fields, else its text."""
    try:
        body = json.loads(request.body)
        if isinstance(body, dict):
            return body
    except ValueError:
        pass
    if request.POST:
        return {key: request.POST.getlist(key) if len(request.POST.getlist(key)) > 1 else request.POST[key] for key in request.POST}
    return {"body": request.body.decode("utf-8", "replace")[:20000]}
