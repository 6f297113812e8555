"""The account pages' live updates (registered in AccountsConfig.ready): which parts of the
open pages refresh when an account changes, and its alerts."""
from accounts.alerts import account_alert_clear, account_alert_follow_status
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


@events.on("account.alert")
def live_account_alert(event) -> None:
    """The banner on every open page of the location, and the account's own page."""
    account = event["account"]
    publish_on_commit(location_id=event.location_id, event="account.alert", topics=["alerts", f"account:{account.pk}"],
                      data={"account": account.pk, "cleared": event["cleared"]})


# --- alerts (accounts.alerts) ------------------------------------------------------------------
@events.on("account.status_changed")
def alert_on_status(event) -> None:
    """Down (disconnected, logged out, error) raises the account's alert; connected clears it."""
    account_alert_follow_status(account=event["account"], status=event["status"], reason=event["reason"])


@events.on("account.archived")
def alert_of_archived_account(event) -> None:
    """A deleted account alerts nobody any more."""
    account_alert_clear(account=event["account"], why="account deleted")
