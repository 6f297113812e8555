"""Reads for the broadcast pages, the API and the CSV."""
from django.db.models import Count

from broadcasts.models import Broadcast, BroadcastRecipient

S = BroadcastRecipient.Status


def broadcasts_for(location):
    return Broadcast.objects.filter(location=location).select_related("account", "created_by")


def recipient_counts(broadcast: Broadcast) -> dict[str, int]:
    """Recipients per status (every status present, 0 when none) and `total`."""
    counts = {status: 0 for status in S.values}
    rows = BroadcastRecipient.objects.filter(broadcast=broadcast).order_by().values("status").annotate(n=Count("id"))
    for row in rows:
        counts[row["status"]] = row["n"]
    counts["total"] = sum(counts[s] for s in S.values)
    # what left the queue: sent, delivered and read are all "sent" for the progress bar
    counts["done"] = counts[S.SENT] + counts[S.DELIVERED] + counts[S.READ]
    return counts


def still_leaving(counts: dict[str, int]) -> str:
    """What a pause does not stop: the messages already in the accounts' queues leave at their
    pace (a pause only stops handing over more); a cancel withdraws them."""
    n = counts[S.QUEUED]
    return f"{n} already handed to the account's queue will still leave; Cancel withdraws them." if n else ""


def skipped_reasons(broadcast: Broadcast) -> list[tuple[str, int]]:
    return list(BroadcastRecipient.objects.filter(broadcast=broadcast, status=S.SKIPPED).order_by()
                .values_list("reason").annotate(n=Count("id")).order_by("-n", "reason"))


def recipients_of(broadcast: Broadcast, *, status: str = ""):
    rows = BroadcastRecipient.objects.filter(broadcast=broadcast).select_related("contact", "account", "message")
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("id")


def accounts_in_use(broadcast: Broadcast):
    """The accounts its recipients leave through (for the page's "x left today" per account)."""
    from_rows = BroadcastRecipient.objects.filter(broadcast=broadcast, account__isnull=False).order_by().values("account_id").distinct()
    return broadcast.location.accounts.filter(pk__in=from_rows)
