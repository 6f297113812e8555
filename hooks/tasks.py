"""django-q2 entry points: thin, they call services."""
import logging

from django_q.tasks import async_task

logger = logging.getLogger(__name__)


def deliver_webhook(delivery_id: int) -> str:
    from hooks.services import hook_delivery_attempt

    return hook_delivery_attempt(delivery_id=delivery_id)


def enqueue_delivery(delivery_id: int) -> None:
    try:
        async_task(deliver_webhook, delivery_id, group="deliver_webhook")
    except Exception:
        # The row is stored; the minute sweep queues it again once the broker is back.
        logger.warning("task broker unavailable; webhook delivery %s left for the sweep", delivery_id, exc_info=True)


def sweep() -> int:
    """Scheduled every minute: queue deliveries due for a retry; forget old idempotency keys."""
    from hooks.services import hook_deliveries_due, idempotency_keys_prune

    return hook_deliveries_due() + idempotency_keys_prune()
