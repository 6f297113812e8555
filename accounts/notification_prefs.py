"""/settings/me/notifications/: every member's own choice of how a new message reaches them —
a browser notification, a sound, and whether unassigned conversations count too. The page
(the "My preferences" card of /settings/) shows the form; notify.js reads the choice."""
from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from accounts.models import Membership
from accounts.tenancy import location_required

CHOICES = ("notify_browser", "notify_sound", "notify_unassigned")


@require_POST
@location_required
def my_notifications(request):
    """Checkboxes: a box left unticked is absent from the form, i.e. off."""
    values = {name: request.POST.get(name) == "on" for name in CHOICES}
    Membership.objects.filter(pk=request.membership.pk).update(**values)
    said = [label for name, label in (("notify_browser", "a browser notification"), ("notify_sound", "a sound")) if values[name]]
    whose = "your conversations and unassigned ones" if values["notify_unassigned"] else "your conversations"
    if said:
        messages.success(request, f"Notifications saved: {' and '.join(said)} for a new message in {whose}.")
    else:
        messages.success(request, "Notifications saved: new messages do not notify you (the tab title still counts them).")
    return redirect("settings")
