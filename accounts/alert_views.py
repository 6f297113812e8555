"""The banner of standing account alerts (accounts.alerts): a live part of every page."""
from django.shortcuts import render

from accounts.tenancy import location_required


@location_required
def account_alerts_banner(request):
    # the context processor reads the location's alerts for this member
    return render(request, "accounts/_alert_banner.html")
