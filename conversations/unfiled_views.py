"""The account page's "Re-run" of unfiled events (conversations.unfiled): location admins,
their own location's accounts only (another location's account is a 404)."""
from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from accounts.models import Account
from accounts.tenancy import admin_required, get_for_location
from conversations.unfiled import unfiled_rerun


@require_POST
@admin_required
def account_unfiled_rerun(request, pk):
    account = get_for_location(Account.objects.filter(archived_at__isnull=True), request.location, pk=pk)
    # a form per reason sends it; "Re-run all" sends none
    reason = request.POST["reason"] if "reason" in request.POST else None
    messages.info(request, unfiled_rerun(account=account, reason=reason).summary())
    return redirect("account-detail", pk=account.pk)
