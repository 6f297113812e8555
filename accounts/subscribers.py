"""The account pages' live updates (registered in AccountsConfig.ready): which parts of the
open pages refresh when an account changes."""
from whatsnap import events
from whatsnap.live import publish_on_commit


def _topics(account) -> list[str]:
    return ["accounts", f"account:{account.pk}"]


@events.on("account.created")
def live_account_created(event) -> None:
    publish_on_commit(location_id=event.location_id, event="account.created", topics=["accounts"])


@events.on("account.status_changed")
def live_account_status(event) -> None:
    account = event["account"]
    publish_on_commit(location_id=event.location_id, event="account.status", topics=_topics(account),
                      data={"account": account.pk, "status": event["status"]})


@events.on("account.qr_updated")
def live_account_qr(event) -> None:
    publish_on_commit(location_id=event.location_id, event="account.qr", topics=[f"account:{event['account'].pk}"])


@events.on("account.settings_changed")
def live_account_settings(event) -> None:
    publish_on_commit(location_id=event.location_id, event="account.settings", topics=_topics(event["account"]))


@events.on("account.archived")
def live_account_archived(event) -> None:
    publish_on_commit(location_id=event.location_id, event="account.deleted", topics=_topics(event["account"]))
