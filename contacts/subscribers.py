"""How contacts react to domain events (registered in ContactsConfig.ready): every account has
its own tag, `whatsnap-account-<slug>`, kept here because tags belong to contacts."""
from contacts.models import Tag
from whatsnap import events
from whatsnap.live import publish_on_commit


@events.on("account.created")
def give_account_its_tag(event) -> None:
    """A new account gets its tag (an existing plain tag of that name becomes the account's)."""
    account = event["account"]
    tag, _ = Tag.objects.get_or_create(location_id=account.location_id, name=account.tag_name)
    tag.account = account
    tag.save(update_fields=["account"])


@events.on("account.archived")
def release_archived_accounts_tag(event) -> None:
    """A deleted account's tag stays on its contacts as a plain tag."""
    Tag.objects.filter(account=event["account"]).update(account=None)


@events.on("contact.updated", "contact.merged")
def live_contact_updated(event) -> None:
    contact = event["contact"]
    publish_on_commit(location_id=event.location_id, event="contact.updated", topics=[f"contact:{contact.pk}", "inbox"])
