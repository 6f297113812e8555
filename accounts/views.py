import segno
from django.core.exceptions import ValidationError
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts import selectors, services
from accounts.forms import AccountSettingsForm, P2PAccountForm, TwilioAccountForm, WhatsAppAccountForm
from accounts.models import Account
from accounts.panels import detail_context
from accounts.providers import get_provider
from accounts.providers.base import ProviderError
from accounts.settings_log import setting_label, settings_changes_shown
from accounts.tenancy import admin_required, get_for_location, location_required
from whatsnap.errors import ApplicationError

CHOICES = [
    {
        "key": "whatsapp",
        "title": "WhatsApp",
        "subtitle": "Connect via QR code scan",
        "form": WhatsAppAccountForm,
    },
    {
        "key": "p2p",
        "title": "SMS/iMessage (P2P)",
        "subtitle": "Connect your personal phone or Mac",
        "form": P2PAccountForm,
    },
    {
        "key": "twilio",
        "title": "Twilio SMS",
        "subtitle": "Configure enterprise SMS with your Twilio number",
        "form": TwilioAccountForm,
    },
]


def _account(request, pk):
    return get_for_location(Account.objects.select_related("tag", "location").filter(archived_at__isnull=True), request.location, pk=pk)


@location_required
def account_list(request):
    accounts = selectors.accounts_for_location(request.location)
    return render(request, "accounts/list.html", {"accounts": accounts})


@location_required
def account_rows(request):
    accounts = selectors.accounts_for_location(request.location)
    return render(request, "accounts/_rows.html", {"accounts": accounts})


@admin_required
def account_add(request, choice: str | None = None):
    selected = next((c for c in CHOICES if c["key"] == choice), None)
    if choice and selected is None:
        return redirect("account-add")
    form = None
    if selected:
        form = selected["form"](request.POST or None)
        if request.method == "POST" and form.is_valid():
            account = _create_from_form(request, form)
            if account is not None:
                services.account_connect(account=account)
                if request.htmx:
                    return HttpResponseClientRedirect(reverse("account-detail", args=[account.pk]))
                return redirect("account-detail", pk=account.pk)
    template = "accounts/_add_form.html" if request.htmx and selected else "accounts/add.html"
    return render(request, template, {"choices": CHOICES, "selected": selected, "form": form})


def _create_from_form(request, form) -> Account | None:
    data = form.cleaned_data
    creds, config = form.backend_settings()
    try:
        return services.account_create(
            location=request.location,
            kind=form.kind(),
            backend=data["backend"],
            name=data["name"],
            phone_number=data.get("phone_number", ""),
            credentials=creds,
            config=config,
        )
    except ApplicationError as exc:
        field = "name" if exc.field in (None, "slug") else exc.field
        form.add_error(field if field in form.fields else None, exc.message)
        return None


@location_required
def account_detail(request, pk):
    account = _account(request, pk)
    context = _detail_context(account)
    if request.membership.role == "admin":
        # Backends whose webhooks are configured by hand (BlueBubbles) need the URL with its
        # shared secret; only admins see it.
        context["setup_webhook_url"] = get_provider(account.backend).setup_webhook_url(account)
    return render(request, "accounts/detail.html", context)


def _detail_context(account, health=None):
    provider = get_provider(account.backend)
    return {
        "account": account,
        "stats": selectors.account_stats(account),
        "checks": selectors.account_diagnostics(account, health=health),
        "events": account.events.all()[:20],
        "webhook_urls": account.webhook_urls(),
        "backend_card": provider.account_card(account),
        "backend_card_template": provider.card_template,
        **detail_context(account),  # what higher apps show here (send queue, GHL sync)
        **_qr_context(account),
    }


@location_required
def account_status_fragment(request, pk):
    """The live part of the account page: status, QR, connected number."""
    account = _account(request, pk)
    return render(request, "accounts/_connect.html", {"account": account, **_qr_context(account)})


@location_required
def account_history_fragment(request, pk):
    account = _account(request, pk)
    return render(request, "accounts/_history.html", _detail_context(account))


def _qr_context(account):
    if account.status != Account.Status.QR_PENDING or not account.qr_payload:
        return {"qr_svg": None}
    remaining = int((account.qr_expires_at - timezone.now()).total_seconds()) if account.qr_expires_at else 30
    svg = segno.make(account.qr_payload, error="m").svg_inline(scale=5, border=2)
    return {"qr_svg": svg, "qr_seconds_left": max(remaining, 0)}


@location_required
def account_diagnostics_fragment(request, pk):
    account = _account(request, pk)
    health = get_provider(account.backend).health(account)
    return render(request, "accounts/_diagnostics.html", {"checks": selectors.account_diagnostics(account, health=health)})


@require_POST
@location_required
def account_qr_refresh(request, pk):
    """The page's QR expired: any member looking at it gets the next one (linking happens on
    the phone; the QR itself grants nothing here)."""
    account = _account(request, pk)
    if account.status == Account.Status.QR_PENDING:
        services.account_qr_renew(account=account)
        account.refresh_from_db()
    return render(request, "accounts/_connect.html", {"account": account, **_qr_context(account)})


@require_POST
@admin_required
def account_action(request, pk, action: str):
    account = _account(request, pk)
    if action == "reconnect":
        services.account_connect(account=account)
        messages.info(request, f"Reconnecting {account.name}.")
    elif action == "disconnect":
        services.account_disconnect(account=account)
        messages.info(request, f"{account.name} disconnected.")
    else:
        return HttpResponse(status=404)
    return redirect("account-detail", pk=account.pk)


@admin_required
def account_delete_confirm(request, pk):
    account = _account(request, pk)
    if request.method == "POST":
        services.account_archive(account=account)
        messages.success(request, f"{account.name} deleted. Its contacts and conversations stay.")
        return redirect("account-list")
    stats = selectors.account_stats(account)
    return render(request, "accounts/delete.html", {"account": account, "stats": stats,
                                                    "conversation_count": account.conversations.count()})


@admin_required
def account_settings(request, pk):
    account = _account(request, pk)
    form = AccountSettingsForm(request.POST or None, instance=Account.objects.get(pk=account.pk))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        values = {f: data[f] for f in ("name", "timezone", "signature", "auto_reply_text", "send_per_minute",
                                      "send_jitter_seconds") if f in data}
        values["business_hours"] = data["hours_text"]
        values["default_assignee_id"] = data["default_assignee"].pk if data.get("default_assignee") else None
        values["default_team_id"] = data["default_team"].pk if data.get("default_team") else None
        for optional in ("typing_delay_seconds", "send_read_receipts", "history_days", "quiet_alert_minutes"):
            if optional in data:
                values[optional] = data[optional]
        try:
            changes = services.account_settings_update(account=account, actor=request.user, **values)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Saved ({', '.join(setting_label(f) for f in changes) or 'no changes'}).")
            return redirect("account-settings", pk=account.pk)
    return render(request, "accounts/settings.html", {"account": account, "form": form,
                                                      "changes": settings_changes_shown(account)})


@admin_required
@require_POST
def account_add_numbers(request, choice: str):
    """The Add Account form's "Load my numbers": the credentials typed so far (never stored,
    never rendered back) -> a picker of the account's numbers in place of the text field."""
    card = next((c for c in CHOICES if c["key"] == choice), None)
    provider = card["form"].number_lister() if card else None
    if provider is None:
        return HttpResponse(status=404)
    current = request.POST.get("phone_number", "")
    data = {}
    for name, field in provider.form_fields().items():
        try:  # each field on its own: the form's clean() would ask the backend to verify the number too
            data[name] = field.clean(request.POST.get(name, ""))
        except ValidationError as exc:
            return _number_picker(request, provider, [], " ".join(exc.messages), current)
    credentials, config = provider.form_settings(data)
    try:
        numbers, error = provider.list_numbers(credentials=credentials, config=config), ""
    except ProviderError as exc:
        numbers, error = [], str(exc)
    return _number_picker(request, provider, numbers, error, current)


def _number_picker(request, provider, numbers: list[str], error: str, current: str):
    return render(request, "accounts/_number_picker.html", {"numbers": numbers, "error": error, "current": current,
                                                            "label": provider.label})
