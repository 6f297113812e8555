"""The GoHighLevel page's "Sending from GHL" card: the default account per channel and the
account each GHL user sends through (send_choice.py uses them). Admins change them; the form
answers in place over HTMX (errors shown next to the form) and works without it too."""
from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.tenancy import admin_required
from ghl.models import GhlConnection, GhlUser
from ghl.send_choice import ghl_user_account_set, send_defaults_set, send_settings_context
from whatsnap.errors import ApplicationError


def sending_context(location) -> dict:
    return {
        "connection": GhlConnection.objects.filter(location=location).select_related(
            "default_sms_account", "default_whatsapp_account").first(),
        "ghl_users": GhlUser.objects.filter(location=location).select_related("user", "sends_through").order_by("name"),
        **send_settings_context(location),
    }


@admin_required
@require_POST
def ghl_sending(request):
    location, what = request.location, request.POST.get("what", "")
    result = {"form": what}
    try:
        with transaction.atomic():
            if what == "defaults":
                connection = send_defaults_set(location=location, sms_account_id=request.POST.get("default_sms_account"),
                                               whatsapp_account_id=request.POST.get("default_whatsapp_account"))
                result["saved"] = _defaults_saved(connection)
            elif what == "user":
                ghl_user = ghl_user_account_set(location=location, ghl_user_pk=request.POST.get("ghl_user"),
                                                account_id=request.POST.get("account"))
                result["saved"] = (f"{ghl_user.name or ghl_user.email}'s sends go through {ghl_user.sends_through.name}."
                                   if ghl_user.sends_through else f"{ghl_user.name or ghl_user.email} chooses no account: the defaults apply.")
            else:
                raise ApplicationError("Unknown setting.")
    except ApplicationError as exc:
        result["error"], result["error_field"] = exc.message, exc.field
    if what == "user" and str(request.POST.get("ghl_user", "")).isdigit():
        result["form_user"] = int(request.POST["ghl_user"])
    if request.headers.get("HX-Request"):
        return render(request, "ghl/_sending.html", {**sending_context(location), **result})
    (messages.error if "error" in result else messages.success)(request, result.get("error") or result["saved"])
    return redirect("ghl-home")


def _defaults_saved(connection) -> str:
    sms = connection.default_sms_account.name if connection.default_sms_account else "none"
    whatsapp = connection.default_whatsapp_account.name if connection.default_whatsapp_account else "none"
    return f"Defaults saved: SMS {sms}, WhatsApp {whatsapp}."
