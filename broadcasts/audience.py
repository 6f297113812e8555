"""Who a broadcast goes to: the segment (tags any/all of the location's tags), and for each
contact the account it leaves through or the reason it is skipped (opted out, a group, no
account that can reach them). One plan serves the preview and the snapshot taken at start."""
from collections import Counter, defaultdict
from dataclasses import dataclass

from accounts.models import Account
from accounts.reach import unreachable_reason
from broadcasts.models import Broadcast
from contacts.models import Contact, ContactAccount, ContactTag

OPTED_OUT = "Opted out (replied STOP)."
NO_OWN_ACCOUNT = "No account of theirs: no account tag and never wrote to an account."


@dataclass(frozen=True)
class Planned:
    contact_id: int
    account_id: int | None
    reason: str  # "" = to send


def segment_contacts(*, location, tag_ids: list[int], match: str):
    contacts = Contact.objects.filter(location=location)
    if not tag_ids:
        return contacts.none()
    if match == Broadcast.Match.ALL:
        for tag_id in tag_ids:
            contacts = contacts.filter(pk__in=ContactTag.objects.filter(tag_id=tag_id).values("contact_id"))
        return contacts
    return contacts.filter(pk__in=ContactTag.objects.filter(tag_id__in=tag_ids).values("contact_id"))


def _own_candidates(contacts) -> dict[int, list[int]]:
    """Per contact, its accounts in order of preference: its account tags (newest first), the
    account it last wrote to, the other accounts it wrote through (most recent first)."""
    found: dict[int, list[int]] = defaultdict(list)
    tagged = (ContactTag.objects.filter(contact__in=contacts, tag__account__isnull=False)
              .order_by("contact_id", "-added_at", "-id").values_list("contact_id", "tag__account_id"))
    for contact_id, account_id in tagged:
        found[contact_id].append(account_id)
    for contact_id, account_id in contacts.filter(active_account__isnull=False).values_list("pk", "active_account_id"):
        found[contact_id].append(account_id)
    links = (ContactAccount.objects.filter(contact__in=contacts).order_by("contact_id", "-last_seen_at")
             .values_list("contact_id", "account_id"))
    for contact_id, account_id in links:
        found[contact_id].append(account_id)
    return found


def _choose(contact, candidates: list[Account]) -> tuple[int | None, str]:
    """The first of its accounts that can reach it now; else the first that could once it
    reconnects (the broadcast waits for it); else skipped with the first account's reason."""
    first_reason, waiting = "", None
    for account in candidates:
        reason = unreachable_reason(account, contact)
        if reason is None:
            return account.pk, ""
        if waiting is None and unreachable_reason(account, contact, even_if_disconnected=True) is None:
            waiting = account.pk
        first_reason = first_reason or reason
    if waiting is not None:
        return waiting, ""
    return None, first_reason or NO_OWN_ACCOUNT


def plan(*, location, tag_ids: list[int], match: str, account: Account | None):
    """Yield a Planned per contact of the segment, in id order."""
    contacts = segment_contacts(location=location, tag_ids=tag_ids, match=match)
    accounts = {a.pk: a for a in Account.objects.filter(location=location, archived_at__isnull=True).select_related("location")}
    own = _own_candidates(contacts) if account is None else {}
    fields = ("id", "kind", "phone", "phone_is_e164", "whatsapp_lid", "opted_out", "name")
    for contact in contacts.only(*fields).order_by("id").iterator(chunk_size=2000):
        if contact.opted_out:
            yield Planned(contact.pk, None, OPTED_OUT)
            continue
        if account is not None:
            reason = unreachable_reason(account, contact, even_if_disconnected=True)
            yield Planned(contact.pk, account.pk if reason is None else None, reason or "")
            continue
        seen = dict.fromkeys(a for a in own.get(contact.pk, ()) if a in accounts)
        account_id, reason = _choose(contact, [accounts[a] for a in seen])
        yield Planned(contact.pk, account_id, reason)


def first_to_send(*, location, tag_ids: list[int], match: str, account: Account | None):
    """(contact, account) of the first contact it is sent to, through the account chosen for
    it (the preview renders the message as they read it); None when it reaches nobody."""
    for row in plan(location=location, tag_ids=tag_ids, match=match, account=account):
        if not row.reason:
            return Contact.objects.get(pk=row.contact_id), Account.objects.select_related("location").get(pk=row.account_id)
    return None


def preview(*, location, tag_ids: list[int], match: str, account: Account | None) -> dict:
    """Counts for the composer: in the segment, to send (per account), skipped (per reason)."""
    total, per_account, skipped = 0, Counter(), Counter()
    for row in plan(location=location, tag_ids=tag_ids, match=match, account=account):
        total += 1
        if row.reason:
            skipped[row.reason] += 1
        else:
            per_account[row.account_id] += 1
    accounts = Account.objects.select_related("location").in_bulk(list(per_account))
    return {"total": total, "to_send": sum(per_account.values()), "skipped": sum(skipped.values()),
            "skipped_by_reason": skipped.most_common(), "per_account": [(accounts[pk], n) for pk, n in per_account.most_common()]}
