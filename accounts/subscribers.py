"""The account pages' live updates (registered in AccountsConfig.ready): which parts of the
open pages refresh when an account changes."""
from whatsnap import events
from whatsnap.live import publish_on_commit


def _topics(account) -> list[str]:
    return ["accounts", f"account:{account.pk}"]


def live_account_created(event) -> None:
    publish_on_commit(location_id=event.location_id, event="account.created", topics=["accounts"])


def live_account_status(event) -> None:
    account = event["account"]
    publish_on_commit(location_id=event.location_id, event="account.status", topics=_topics(account),
                      data={"account": account.pk, "status": event["status"]})


def live_account_qr(event) -> None:
    publish_on_commit(location_id=event.location_id, event="account.qr", topics=[f"account:{event['account'].pk}"])


def live_account_settings(event) -> None:
    publish_on_commit(location_id=event.location_id, event="account.settings", topics=_topics(event["account"]))


def live_account_archived(event) -> None:
    publish_on_commit(location_id=event.location_id, event="account.deleted", topics=_topics(event["account"]))


def register() -> None:
    events.subscribe("account.created", live_account_created)
    events.subscribe("account.status_changed", live_account_status)
    events.subscribe("account.qr_updated", live_account_qr)
    events.subscribe("account.settings_changed", live_account_settings)
    events.subscribe("account.archived", live_account_archived)
