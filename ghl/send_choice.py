"""Which account a message sent from GHL goes out through (issue 18), and the settings behind it.

A ProviderOutboundMessage names no account or number (GoHighLevel/highlevel-api-docs,
docs/webhook events/ProviderOutboundMessage.md: contactId, locationId, messageId, type, phone,
message, attachments, userId). The choice, first that applies:

1. the contact's `whatsnap-account-*` tags — GHL's as read just now and ours. A tag GHL has and
   we do not is the freshest signal (a workflow added it, then sent: our copy through the
   ContactTagUpdate webhook may not be here yet) and wins; among several such tags the last in
   GHL's list. Then the contact's other account tags, the one it last wrote to or was last
   moved to first (a tag GHL no longer has, but was told of, was removed there and counts no
   more);
2. the account the sending GHL user sends through (GhlUser.sends_through);
3. the location's default account for the delivery's channel (GhlConnection.default_*).

A choice whose account cannot reach the contact now (accounts.reach.unreachable_reason: not
connected, or a number it cannot text) is passed over for the next one: a workflow's message
that can still leave through another of the location's numbers is not failed. Only when none
is left is the message failed in GHL, with the reason.

The channel: every provider WhatSnap registers is of type SMS, so deliveries say "SMS"
(docs/marketplace modules/ConversationProviders.md); the Delivery URL tells them apart. The
WhatsApp provider's own URL (webhooks.whatsapp_provider_webhook) -> a WhatsApp account. The SMS
provider's URL: as the default SMS provider (workflow "Send SMS" actions, bulk actions) -> an
SMS-capable account; as the custom provider, which carries every account, the WhatsApp default,
then the SMS default. A type "Custom" (older WhatSnap posts) counts as WhatsApp in default mode,
and "WhatsApp" always does."""
from django.db.models import Max

from accounts.models import Account
from accounts.reach import CHANNEL_LABELS, IMESSAGE, SMS, WHATSAPP, can_send_sms, channel_of, unreachable_reason
from contacts.models import ContactAccount, ContactTag, Tag
from ghl.contact_sync import contact_fields, desired_contact, fingerprint_of
from ghl.models import ContactSync, GhlConnection, GhlUser
from whatsnap.errors import ApplicationError

ACCOUNT_TAG_PREFIX = "whatsnap-account-"


def delivery_channels(delivery_type: str, provider_mode: str, provider: str = "") -> list[str]:
    """The channels whose default account may take a delivery, in order. `provider` is
    "whatsapp" for a delivery to the WhatsApp provider's own Delivery URL."""
    kind = (delivery_type or "SMS").strip().lower()
    if kind == "whatsapp" or provider == "whatsapp":
        return [WHATSAPP]
    if provider_mode == GhlConnection.Mode.CUSTOM:
        return [WHATSAPP, SMS]
    return [WHATSAPP] if kind == "custom" else [SMS]


# --- the contact's account tags: ours and GHL's -------------------------------------------------
def account_tags_follow_ghl(contact, ghl_tags: list[str] | None, *, same_ghl_contact: bool) -> list[Account]:
    """Bring the contact's account tags in line with what GHL holds (account_tags_mirror) and
    return the tagged accounts, the one to try first first. ghl_tags None: GHL could not be
    read; our tags alone decide."""
    tags = _account_tags(contact.location_id)
    fresh: list[str] = []
    if ghl_tags is not None:
        fresh, _gone = account_tags_mirror(contact, ghl_tags, same_ghl_contact=same_ghl_contact, tags=tags)
    ours = set(ContactTag.objects.filter(contact=contact, tag__in=tags.values()).values_list("tag__name", flat=True))
    return [tags[n].account for n in fresh] + _by_recency(contact, [tags[n].account for n in ours - set(fresh)])


def _account_tags(location_id: int) -> dict[str, Tag]:
    return {t.name: t for t in Tag.objects.filter(location_id=location_id, account__isnull=False,
                                                  account__archived_at__isnull=True).select_related("account")}


def account_tags_mirror(contact, ghl_tags, *, same_ghl_contact: bool, tags: dict | None = None) -> tuple[list[str], set[str]]:
    """GHL's account tags onto our contact: the ones GHL has and we do not are added (returned
    newest first: the last in GHL's list first); the ones GHL was told of (ContactSync) and no
    longer has are removed — only when GHL's contact is the one linked to ours. A tag of ours
    GHL has not been told of yet (its sync is waiting) stays. Other tags are GHL's business.
    What GHL holds is recorded as synced, so nothing echoes back. Returns (added, removed)."""
    tags = tags if tags is not None else _account_tags(contact.location_id)
    ours = set(ContactTag.objects.filter(contact=contact, tag__in=tags.values()).values_list("tag__name", flat=True))
    in_ghl = [t for t in dict.fromkeys(str(x) for x in ghl_tags) if t in tags]
    fresh = [t for t in reversed(in_ghl) if t not in ours]
    sync = ContactSync.objects.filter(contact=contact).first() if same_ghl_contact else None
    gone = (ours & set(sync.tags)) - set(in_ghl) if sync else set()
    for name in fresh:
        ContactTag.objects.get_or_create(contact=contact, tag=tags[name])
    if gone:
        ContactTag.objects.filter(contact=contact, tag__in=[tags[n] for n in gone]).delete()
    if sync and (fresh or gone):
        sync.tags = sorted((set(sync.tags) - gone) | set(fresh))
        desired = desired_contact(contact)
        if sync.tags == desired["tags"] and {"phone": desired["phone"], **sync.fields} == contact_fields(desired):
            sync.fingerprint = fingerprint_of(desired)  # GHL is in line with us now: no call owed
        sync.save(update_fields=["tags", "fingerprint"])
    return fresh, gone


def _by_recency(contact, accounts: list[Account]) -> list[Account]:
    """The account the contact last wrote to, or was last tagged with, first."""
    if not accounts:
        return []
    added = dict(ContactTag.objects.filter(contact=contact, tag__account__in=accounts).values_list("tag__account_id", "added_at"))
    seen = dict(ContactAccount.objects.filter(contact=contact, account__in=accounts)
                .values("account_id").annotate(t=Max("last_seen_at")).values_list("account_id", "t"))

    def latest(account):
        moments = [m for m in (added.get(account.pk), seen.get(account.pk)) if m is not None]
        return max(moments) if moments else None

    dated = [(latest(a), a) for a in accounts]
    return [a for t, a in sorted(dated, key=lambda row: (row[0] is not None, row[0] or 0, row[1].pk), reverse=True)]


# --- the choice ---------------------------------------------------------------------------------
def account_choose(*, location, contact, tagged: list[Account], ghl_user_id: str, channels: list[str]) -> tuple[Account | None, str]:
    """(account, how it was chosen) or (None, why nothing can send it, for a GHL user)."""
    connection = GhlConnection.objects.filter(location=location).first()
    candidates = [(a, f"the contact's tag {a.tag_name}") for a in tagged]
    ghl_user = GhlUser.objects.filter(location=location, ghl_user_id=ghl_user_id).select_related("sends_through").first() if ghl_user_id else None
    if ghl_user is not None and ghl_user.sends_through is not None:
        candidates.append((ghl_user.sends_through, f"the account {ghl_user.name or 'the GHL user'} sends through"))
    for channel in channels:
        account = _default_for(connection, channel)
        if account is not None:
            candidates.append((account, f"the default {CHANNEL_LABELS[channel]} account"))
    passed_over = []
    for account, how in candidates:
        if account.location_id != location.pk or account.archived_at is not None:
            continue  # never another location's account, whatever was stored
        reason = unreachable_reason(account, contact)
        if reason is None:
            return account, how
        passed_over.append(reason)
    if passed_over:
        return None, "No WhatSnap account can send this now: " + " ".join(dict.fromkeys(passed_over))
    label = "SMS" if channels == [SMS] else "WhatsApp" if channels == [WHATSAPP] else "WhatsApp or SMS"
    return None, (f"No WhatSnap account can send this: add a {ACCOUNT_TAG_PREFIX}<name> tag to the contact, "
                  f"or choose a default {label} account on WhatSnap's GoHighLevel page.")


def _default_for(connection, channel: str) -> Account | None:
    if connection is None:
        return None
    account = connection.default_whatsapp_account if channel == WHATSAPP else connection.default_sms_account
    return account if account is not None and account_fits(account, channel) else None


def account_fits(account: Account, channel: str) -> bool:
    return channel_of(account) == WHATSAPP if channel == WHATSAPP else can_send_sms(account)


# --- settings (the GoHighLevel page, admins only) ------------------------------------------------
def _location_account(location, account_id, *, field: str) -> Account | None:
    if account_id in (None, ""):
        return None
    try:
        account_id = int(account_id)
    except (TypeError, ValueError):
        raise ApplicationError("Pick an account from the list.", field=field) from None
    account = Account.objects.filter(location=location, pk=account_id, archived_at__isnull=True).first()
    if account is None:
        raise ApplicationError("That account is not one of this location's accounts.", field=field, code="not_found")
    return account


def send_defaults_set(*, location, sms_account_id, whatsapp_account_id) -> GhlConnection:
    """The location's default accounts for GHL sends: checked against the location and the
    channel before anything is saved."""
    connection = GhlConnection.objects.filter(location=location).first()
    if connection is None:
        raise ApplicationError("Connect GHL first.")
    sms = _location_account(location, sms_account_id, field="default_sms_account")
    whatsapp = _location_account(location, whatsapp_account_id, field="default_whatsapp_account")
    if sms is not None and not account_fits(sms, SMS):
        raise ApplicationError(f"{sms.name} cannot send SMS; pick an SMS phone, a Twilio number or a Mac.", field="default_sms_account")
    if whatsapp is not None and not account_fits(whatsapp, WHATSAPP):
        raise ApplicationError(f"{whatsapp.name} is not a WhatsApp account.", field="default_whatsapp_account")
    connection.default_sms_account, connection.default_whatsapp_account = sms, whatsapp
    connection.clean()
    connection.save(update_fields=["default_sms_account", "default_whatsapp_account"])
    return connection


def ghl_user_account_set(*, location, ghl_user_pk, account_id) -> GhlUser:
    """The account a GHL user's sends go through (blank: none, the defaults apply)."""
    ghl_user = GhlUser.objects.filter(location=location, pk=ghl_user_pk).first() if str(ghl_user_pk or "").isdigit() else None
    if ghl_user is None:
        raise ApplicationError("That GHL user is not one of this location's.", field="ghl_user", code="not_found")
    ghl_user.sends_through = _location_account(location, account_id, field="account")
    ghl_user.clean()
    ghl_user.save(update_fields=["sends_through"])
    return ghl_user


def send_settings_context(location) -> dict:
    """What the GoHighLevel page shows of these settings."""
    accounts = list(Account.objects.filter(location=location, archived_at__isnull=True).order_by("name"))
    return {
        "sms_accounts": [a for a in accounts if account_fits(a, SMS)],
        "whatsapp_accounts": [a for a in accounts if account_fits(a, WHATSAPP)],
        "all_accounts": accounts,
        "imessage_note": any(channel_of(a) == IMESSAGE for a in accounts),
    }
