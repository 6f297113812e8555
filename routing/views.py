from functools import partial

from django.contrib import messages
from django.db import transaction
from django.db.models import Count
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.models import Membership
from accounts.services import member_set_availability
from accounts.tenancy import admin_required, get_for_location, location_required
from contacts.models import Contact
from routing import queue
from routing.forms import DryRunForm, RoutingRuleForm, TeamForm
from routing.models import RoutingRule, Team
from routing.services import route_decide
from whatsnap.phones import normalise_for_account


@location_required
def routing_home(request):
    rules = RoutingRule.objects.filter(location=request.location).select_related("account", "target_user", "target_team").prefetch_related("tags")
    teams = Team.objects.filter(location=request.location).prefetch_related("members")
    members = Membership.objects.filter(location=request.location).select_related("user").order_by("user__username")
    teams = teams.annotate(waiting_count=Count("waiting"))
    return render(request, "routing/home.html", {"rules": rules, "teams": teams, "members": members})


def _edit(request, form_class, instance, template, title, saved=None):
    form = form_class(request.POST or None, instance=instance, location=request.location)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            obj = form.save()
            if saved is not None:
                saved(obj)
        messages.success(request, f"{title} saved.")
        return redirect("routing")
    return render(request, template, {"form": form, "title": title})


@admin_required
def rule_edit(request, pk=None):
    rule = get_for_location(RoutingRule.objects.all(), request.location, pk=pk) if pk else None
    return _edit(request, RoutingRuleForm, rule, "routing/edit.html", "Routing rule")


@admin_required
def team_edit(request, pk=None):
    team = get_for_location(Team.objects.all(), request.location, pk=pk) if pk else None
    return _edit(request, TeamForm, team, "routing/edit.html", "Team", saved=_drain_after_commit)


def _drain_after_commit(team: Team) -> None:
    """A member added to the team may take what waits for it."""
    transaction.on_commit(partial(queue.drain_quietly, queue.teams_drain, team_ids=[team.pk]))


@location_required
def waiting(request):
    """The waiting queue partial (the inbox refreshes it live and every minute for its ages)."""
    return render(request, "routing/_waiting.html", {"show_empty": request.GET.get("empty") == "1"})


@require_POST
@admin_required
def rule_delete(request, pk):
    get_for_location(RoutingRule.objects.all(), request.location, pk=pk).delete()
    return redirect("routing")


@require_POST
@location_required
def availability_set(request):
    value = request.POST.get("availability")
    if value in Membership.Availability.values:
        member_set_availability(membership=request.membership, availability=value)
    from django.utils.http import url_has_allowed_host_and_scheme

    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "inbox"
    return redirect(target)


@location_required
def dry_run(request):
    form = DryRunForm(request.GET or None, location=request.location)
    decision = assignee = contact = None
    if request.GET and form.is_valid():
        account = form.cleaned_data["account"]
        sender = normalise_for_account(form.cleaned_data["phone"], account_phone=account.phone_number)
        contact = Contact.objects.filter(location=request.location, phone=sender.value).first()
        if contact is None:
            contact = Contact(location=request.location, phone=sender.value)
        tag = getattr(account, "tag", None)
        decision = route_decide(account=account, contact=contact, extra_tag_ids=[tag.pk] if tag else [])
        if decision.assignee_id:
            from django.contrib.auth import get_user_model

            assignee = get_user_model().objects.get(pk=decision.assignee_id)
        if tag is not None:
            decision.trace.insert(0, f"the contact carries {tag.name} once it writes to {account.name}")
    return render(request, "routing/dry_run.html", {"form": form, "decision": decision, "assignee": assignee, "contact": contact})
