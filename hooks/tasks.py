"""The hooks app's minute sweep, and the task name earlier versions queued.

Deliveries are queued by hooks.services (deliver_webhook) through whatsnap.tasks. Tasks stored
by an earlier version name `hooks.tasks.deliver_webhook`: that name stays importable here so a
deploy never strands a queued delivery."""
from hooks.services import deliver_webhook, hook_deliveries_due

__all__ = ["deliver_webhook", "sweep"]


def sweep() -> int:
    """Every minute (registered with whatsnap.tasks): queue deliveries due for a retry and
    release claims whose worker died."""
    return hook_deliveries_due()
