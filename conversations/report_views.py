import csv
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.models import Account
from accounts.tenancy import get_for_location, location_required
from conversations.reports import daily_svg, report_build


def _period(request):
    # "today" in the location's zone: the report's days are the location's days
    today = timezone.localdate(timezone=ZoneInfo(request.location.timezone or "UTC"))
    try:
        end = date.fromisoformat(request.GET.get("end", "")) if request.GET.get("end") else today
        start = date.fromisoformat(request.GET.get("start", "")) if request.GET.get("start") else end - timedelta(days=6)
    except (ValueError, OverflowError):  # not a date, or a week before 0001-01-01
        start, end = today - timedelta(days=6), today
    if start > end:
        start, end = end, start
    if start.year < 2000 or end.year > 2999:  # no messages there; and year 1/9999 overflow time zones
        start, end = today - timedelta(days=6), today
    return start, min(end, start + timedelta(days=366))


def _render(request, account=None):
    start, end = _period(request)
    report = report_build(location=request.location, start=start, end=end, account=account)
    if request.GET.get("format") == "csv":
        return _csv(report, account)
    accounts = Account.objects.filter(location=request.location, archived_at__isnull=True)
    return render(request, "conversations/report.html", {"report": report, "account": account, "chart": daily_svg(report),
                                                         "accounts": accounts})


@location_required
def location_report(request):
    return _render(request)


@location_required
def account_report(request, pk):
    return _render(request, get_for_location(Account.objects.all(), request.location, pk=pk))


def _csv(report, account):
    response = HttpResponse(content_type="text/csv")
    name = f"whatsnap-{account.slug if account else 'location'}-{report.start}-{report.end}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    out = csv.writer(response)
    out.writerow(["metric", "value"])
    for key in ("messages_in", "messages_out", "new_contacts", "conversations_opened", "conversations_resolved"):
        out.writerow([key, getattr(report, key)])
    for key in ("median", "p90"):
        out.writerow([f"first_response_{key}_seconds", _seconds(report.first_response.get(key))])
        out.writerow([f"resolution_{key}_seconds", _seconds(report.resolution.get(key))])
    out.writerow([])
    out.writerow(["day", "messages_in", "messages_out"])
    out.writerows(report.daily)
    out.writerow([])
    columns = ["conversations", "messages_out", "resolved", "first_response_median", "first_response_p90", "resolution_median", "resolution_p90"]
    out.writerow(["agent", *(c + "_seconds" if c.endswith(("median", "p90")) else c for c in columns)])
    for row in report.agents:
        out.writerow([row["agent"], *(_seconds(row[c]) if c.endswith(("median", "p90")) else row[c] for c in columns)])
    return response


def _seconds(value):
    return None if value is None else round(value, 1)
