"""How people and channels look everywhere: an initials avatar ({% avatar name %}) and an
icon per channel ({% channel_icon account %}), drawn here as inline SVG (nothing loaded from
outside). Any app's template may {% load look %}."""
import hashlib

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from accounts.models import Account

register = template.Library()

# 24×24 drawings of our own, one per kind of account; the label is the kind's own name
_ICONS = {
    Account.Kind.WHATSAPP: ('<path fill="#25d366" d="M12 2.6a9.4 9.4 0 0 0-8.1 14.1L2.6 21.4l4.8-1.3A9.4 9.4 0 1 0 12 2.6z"/>'
                            '<path fill="#fff" d="M9.1 7.2c.3 0 .5 0 .7.5l.8 1.9c.1.3 0 .5-.2.7l-.6.7c.7 1.3 1.7 2.3 3 3l.7-.6'
                            'c.2-.2.5-.3.7-.2l1.9.8c.4.2.5.4.5.7 0 1.1-.9 2-2.1 2-3.6-.3-6.9-3.6-7.2-7.2 0-1.2.8-2.2 1.8-2.3z"/>'),
    Account.Kind.ANDROID_SMS: ('<path fill="#3b82f6" d="M5 3.5h14a2.5 2.5 0 0 1 2.5 2.5v9a2.5 2.5 0 0 1-2.5 2.5H10l-4.8 3.5V17.5H5'
                               'A2.5 2.5 0 0 1 2.5 15V6A2.5 2.5 0 0 1 5 3.5z"/><circle fill="#fff" cx="8" cy="10.5" r="1.4"/>'
                               '<circle fill="#fff" cx="12" cy="10.5" r="1.4"/><circle fill="#fff" cx="16" cy="10.5" r="1.4"/>'),
    Account.Kind.IMESSAGE: ('<path fill="#0a84ff" d="M12 3.5c-5.2 0-9.5 3.3-9.5 7.4 0 2.3 1.3 4.4 3.5 5.7l-.9 3.9 4.1-2.4'
                            'c.9.2 1.8.3 2.8.3 5.2 0 9.5-3.3 9.5-7.5S17.2 3.5 12 3.5z"/>'),
    Account.Kind.TWILIO: ('<circle cx="12" cy="12" r="9" fill="none" stroke="#f22f46" stroke-width="2.4"/>'
                          '<g fill="#f22f46"><circle cx="9.4" cy="9.4" r="1.9"/><circle cx="14.6" cy="9.4" r="1.9"/>'
                          '<circle cx="9.4" cy="14.6" r="1.9"/><circle cx="14.6" cy="14.6" r="1.9"/></g>'),
}
_SHORT = {Account.Kind.WHATSAPP: "WhatsApp", Account.Kind.ANDROID_SMS: "SMS", Account.Kind.IMESSAGE: "iMessage",
          Account.Kind.TWILIO: "Twilio"}


@register.simple_tag
def channel_icon(account, size: int = 16):
    """The channel's icon, labelled with its kind (screen readers and hover read it)."""
    kind = getattr(account, "kind", account)
    drawing = _ICONS.get(kind)
    label = account.get_kind_display() if hasattr(account, "get_kind_display") else _SHORT.get(kind, str(kind))
    if drawing is None:
        return format_html('<span class="channel-icon unknown" title="{}">{}</span>', label, label[:1].upper())
    return format_html('<svg class="channel-icon ch-{}" width="{}" height="{}" viewBox="0 0 24 24" role="img" aria-label="{}">'
                       '<title>{}</title>{}</svg>', kind, size, size, label, label, _safe(drawing))


@register.filter
def channel_name(account) -> str:
    """The short name of an account's channel: WhatsApp, SMS, iMessage, Twilio."""
    return _SHORT.get(getattr(account, "kind", account), "")


def _safe(markup: str):
    return mark_safe(markup)  # noqa: S308 — our own constant drawings above, never user text


def initials(name: str) -> str:
    """Up to two letters: the first of the first and the last word ("Ada Lovelace" → AL);
    a name that is only a number (a phone) shows '#'."""
    words = [w for w in (name or "").replace(".", " ").split() if any(ch.isalpha() for ch in w)]
    if not words:
        return "#"
    letters = [next(ch for ch in words[0] if ch.isalpha())]
    if len(words) > 1:
        letters.append(next(ch for ch in words[-1] if ch.isalpha()))
    return "".join(letters).upper()


def hue(name: str) -> int:
    """A stable colour per name (the same person looks the same on every page)."""
    return int(hashlib.md5((name or "").encode(), usedforsecurity=False).hexdigest()[:4], 16) % 360


@register.simple_tag
def avatar(name: str, size: str = ""):
    """A round avatar with the name's initials; the full name on hover."""
    return format_html('<span class="avatar{}" style="--avatar-hue:{}" title="{}" aria-hidden="true">{}</span>',
                       f" {size}" if size else "", hue(name), name or "", initials(name))
