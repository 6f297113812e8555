"""The Django admin for many tenants (issue #15, point 3).

A staff user who is an admin member of location A — not a superuser, but holding every model
permission, so scoping is the only thing in the way — sees, picks, filters, acts on and
creates nothing of location B, in every ModelAdmin registered: these tests walk
`admin.site._registry`, so an admin added later without a `location_field` (or without a
row in `build_world`) fails here. Rows of no location (users, groups, the task queue, other
apps' tables) are for superusers only."""
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken, Location, Membership
from accounts.services import account_connect, account_create, account_settings_update, api_token_create
from broadcasts.services import broadcast_create, broadcast_start
from contacts.models import Contact, Tag
from conversations.actions import conversation_assign
from conversations.models import Conversation, Message, MessageTemplate
from conversations.scheduling import scheduled_message_create
from ghl.models import GhlConnection, GhlMessageLink, GhlUser, OutboxItem
from hooks.models import WebhookSubscription
from hooks.services import hook_event_emit, hook_subscription_create
from routing.models import RoutingRule, Team
from tests.test_api_support import receive
from whatsnap.admin_scoping import LocationScopedAdmin, LocationScopedInline, SuperuserOnlyAdmin
from whatsnap.models import IdempotencyKey

PROJECT_APPS = {"whatsnap", "accounts", "contacts", "routing", "conversations", "broadcasts", "ghl", "hooks"}


def _member(username, location, role):
    user = get_user_model().objects.create_user(username=username, password="pw")
    Membership.objects.create(user=user, location=location, role=role)
    return user


def build_world(location, *, tag: str, phone: str) -> None:
    """At least one row of every model with a location-scoped admin, all in `location`, made
    through the services where there is one. A new scoped ModelAdmin needs a row here."""
    owner = _member(f"owner-{tag}", location, Membership.Role.ADMIN)
    account = account_create(location=location, kind="android_sms", backend="sandbox", name=f"Sales {tag}", phone_number=phone)
    account_connect(account=account)  # AccountEvent
    account_settings_update(account=account, actor=owner, signature=f"-- {tag}")  # AccountSettingsChange
    token, _ = api_token_create(location=location, name=f"key {tag}")
    # InboundEvent, Contact (+ its account tag and account link), Conversation, Message
    receive(account, phone="+14155550123", text=f"hello {tag}", name=f"Ada {tag}", pid=f"in-{tag}")
    conversation = Conversation.objects.get(location=location)
    conversation_assign(conversation=conversation, assignee=owner, actor=owner)  # ConversationEvent
    contact, message = Contact.objects.get(location=location), Message.objects.get(location=location)
    Tag.objects.create(location=location, name=f"vip-{tag}")
    MessageTemplate.objects.create(location=location, name=f"Hi {tag}", shortcut=f"hi-{tag}", body=f"Hi from {tag}")
    scheduled_message_create(conversation=conversation, text=f"Later {tag}", send_at=timezone.now() + timedelta(days=1),
                             created_by=owner)  # ScheduledMessage
    team = Team.objects.create(location=location, name=f"Team {tag}")
    team.members.add(owner)
    RoutingRule.objects.create(location=location, name=f"rule {tag}", target=RoutingRule.Target.TEAM, target_team=team, account=account)
    GhlConnection.objects.create(location=location)
    OutboxItem.objects.create(location=location, contact=contact, account=account, operation=OutboxItem.Operation.CONTACT_UPSERT,
                              status=OutboxItem.Status.FAILED, last_error=f"boom {tag}")
    GhlUser.objects.create(location=location, ghl_user_id=f"u-{tag}", name=f"Ghl {tag}", user=owner)
    GhlMessageLink.objects.create(location=location, message=message, ghl_message_id=f"m-{tag}", origin=GhlMessageLink.Origin.WHATSNAP)
    hook_subscription_create(location=location, url=f"http://127.0.0.1:9/{tag}", events=["contact.created"])
    with transaction.atomic():
        hook_event_emit(location_id=location.pk, event="contact.created", data={"tag": tag})
    IdempotencyKey.objects.create(token=token, key=f"k-{tag}", fingerprint="0" * 64)
    broadcast = broadcast_create(location=location, name=f"Sale {tag}", text="Hi {{first_name}}", tag_ids=[account.tag.pk],
                                 account=account, created_by=owner)
    broadcast_start(broadcast=broadcast)  # Broadcast, BroadcastRecipient


def _pks(model) -> set:
    return set(model._default_manager.values_list("pk", flat=True))


@pytest.fixture
def world(db):
    """Location B's rows (and everything of no location) first: every row that exists before
    location A is built is foreign to A's staff admin."""
    theirs = Location.objects.create(name="Globex", slug="globex")
    build_world(theirs, tag="bbb", phone="+14155550222")
    foreign = {model: _pks(model) for model in apps.get_models()}
    mine = Location.objects.create(name="Acme", slug="acme")
    build_world(mine, tag="aaa", phone="+14155550111")
    staff = get_user_model().objects.create_user("staff-a", password="pw", is_staff=True)
    staff.user_permissions.set(Permission.objects.all())
    Membership.objects.create(user=staff, location=mine, role=Membership.Role.ADMIN)
    Membership.objects.create(user=staff, location=theirs, role=Membership.Role.AGENT)  # an agent there: no admin rights
    client = Client()
    client.force_login(staff)
    return {"client": client, "foreign": foreign, "mine": mine, "theirs": theirs}


def _scoped_admins():
    return [(model, model_admin) for model, model_admin in admin.site._registry.items() if isinstance(model_admin, LocationScopedAdmin)]


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _leaks(form, foreign) -> dict:
    """Choices of a form's relation fields that belong to the other location."""
    found = {}
    for name, field in form.fields.items():
        if name == form._meta.model._meta.pk.name:
            continue  # a formset's hidden row id: offers nothing, rows come from the scoped parent
        queryset = getattr(field, "queryset", None)
        if queryset is not None:
            leaked = set(queryset.values_list("pk", flat=True)) & foreign.get(queryset.model, set())
            if leaked:
                found[name] = leaked
    return found


def test_every_admin_is_location_scoped_or_superuser_only():
    """Ours declare the path to their location (and their inlines scope their choices);
    other apps' tables (auth, django_q, …) hold rows of no location: superusers only."""
    for model, model_admin in admin.site._registry.items():
        name = f"{model._meta.label} ({type(model_admin).__name__})"
        if model._meta.app_label in PROJECT_APPS:
            assert isinstance(model_admin, LocationScopedAdmin) and model_admin.location_field, name
            for inline in model_admin.inlines:
                assert issubclass(inline, LocationScopedInline), f"{name}: {inline.__name__}"
        else:
            assert isinstance(model_admin, SuperuserOnlyAdmin), name


def test_rows_of_no_location_are_for_superusers_only(world):
    client = world["client"]
    index = client.get("/admin/").content.decode()
    for model, model_admin in admin.site._registry.items():
        if not isinstance(model_admin, SuperuserOnlyAdmin):
            continue
        assert client.get(_url(model, "changelist")).status_code == 403, model
        assert client.get(_url(model, "change", 1)).status_code == 403, model
        assert _url(model, "changelist") not in index
    users = get_user_model().objects.all()
    assert client.get(_url(get_user_model(), "change", users.get(username="owner-bbb").pk)).status_code == 403


def test_changelists_searches_and_filters_show_no_row_of_another_location(world):
    client, foreign = world["client"], world["foreign"]
    for model, model_admin in _scoped_admins():
        theirs = foreign[model]
        assert theirs, f"build_world makes no {model._meta.label}: add one, so its admin is checked"
        response = client.get(_url(model, "changelist"))
        assert response.status_code == 200, model
        shown = {obj.pk for obj in response.context["cl"].result_list}
        assert shown and not shown & theirs, model  # our rows are there, theirs are not
        for spec in response.context["cl"].filter_specs:
            field = getattr(spec, "field", None)
            if field is not None and field.is_relation:
                offered = {pk for pk, _label in spec.lookup_choices}
                assert not offered & foreign[field.remote_field.model], (model, spec.title)
        if model_admin.search_fields:
            searched = client.get(_url(model, "changelist"), {"q": "bbb"})
            assert not {obj.pk for obj in searched.context["cl"].result_list} & theirs, model


def test_object_urls_of_another_location_are_refused(world):
    client, foreign = world["client"], world["foreign"]
    for model, _model_admin in _scoped_admins():
        for pk in sorted(foreign[model])[:3]:
            for view in ("change", "history", "delete"):
                response = client.get(_url(model, view, pk))
                assert response.status_code in (302, 403, 404), (model, view, pk, response.status_code)
            assert client.post(_url(model, "delete", pk), {"post": "yes"}).status_code in (302, 403, 404)
        assert foreign[model] <= _pks(model), model


def _autocomplete_source(model):
    """Any relation field of any model pointing at `model` (the autocomplete view needs one)."""
    for source in apps.get_models():
        for field in source._meta.get_fields():
            if field.concrete and field.is_relation and field.remote_field.model is model:
                return source, field
    return None, None


def test_autocomplete_returns_no_row_of_another_location(world):
    client, foreign = world["client"], world["foreign"]
    checked = 0
    for model, model_admin in admin.site._registry.items():
        source, field = _autocomplete_source(model)
        if source is None or not model_admin.search_fields:
            continue
        params = {"app_label": source._meta.app_label, "model_name": source._meta.model_name, "field_name": field.name}
        response = client.get(reverse("admin:autocomplete"), {**params, "term": ""})
        if isinstance(model_admin, SuperuserOnlyAdmin):
            assert response.status_code == 403, model
            continue
        assert response.status_code == 200, model
        ids = {int(result["id"]) for result in response.json()["results"]}
        assert ids and not ids & foreign[model], model
        searched = client.get(reverse("admin:autocomplete"), {**params, "term": "bbb"}).json()["results"]
        assert not {int(result["id"]) for result in searched} & foreign[model], model
        checked += 1
    assert checked >= 5


def test_add_and_change_forms_offer_no_choice_of_another_location(world):
    """Foreign keys and many-to-many fields (selects, raw ids, autocomplete) of the main form
    and of every inline."""
    client, foreign = world["client"], world["foreign"]
    for model, _model_admin in _scoped_admins():
        pages = [client.get(_url(model, "add"))]
        mine = sorted(_pks(model) - foreign[model])
        pages.append(client.get(_url(model, "change", mine[0])))
        for response in pages:
            if response.status_code == 403:  # no add view for this model
                continue
            assert response.status_code == 200, model
            assert not _leaks(response.context["adminform"].form, foreign), model
            for inline in response.context["inline_admin_formsets"]:
                for form in [*inline.formset.forms, inline.formset.empty_form]:
                    assert not _leaks(form, foreign), (model, type(inline.opts).__name__)


def test_actions_never_touch_another_location(world):
    client, foreign = world["client"], world["foreign"]
    staff_request = RequestFactory().get("/admin/")
    staff_request.user = get_user_model().objects.get(username="staff-a")
    for model, model_admin in _scoped_admins():
        theirs = sorted(foreign[model])
        before = list(model._default_manager.filter(pk__in=theirs).order_by("pk").values())
        for action in model_admin.get_actions(staff_request):
            client.post(_url(model, "changelist"), {"action": action, "_selected_action": theirs, "post": "yes"})
        after = list(model._default_manager.filter(pk__in=theirs).order_by("pk").values())
        assert after == before, model


def test_rows_cannot_be_created_in_another_location(world):
    client, mine, theirs = world["client"], world["mine"], world["theirs"]
    forms = [
        (Tag, {"name": "sneaky", "location": theirs.pk, "created_at_0": "2026-01-01", "created_at_1": "00:00:00"}),
        (MessageTemplate, {"name": "sneaky", "shortcut": "sneaky", "body": "x", "location": theirs.pk}),
        (ApiToken, {"name": "sneaky", "location": theirs.pk}),
        (WebhookSubscription, {"url": "http://127.0.0.1:9/x", "events": '["contact.created"]', "location": theirs.pk, "is_active": "on"}),
    ]
    for model, data in forms:
        count = model.objects.filter(location=theirs).count()
        response = client.post(_url(model, "add"), data)
        assert response.status_code == 200 and "Select a valid choice" in response.content.decode(), model
        assert model.objects.filter(location=theirs).count() == count, model
        # the same form for their own location works: the refusal above is the location's
        assert client.post(_url(model, "add"), {**data, "location": mine.pk}).status_code == 302, model
        assert model.objects.filter(location=mine, **{k: v for k, v in data.items() if k in ("name", "shortcut")}).exists()
    assert client.get(_url(Location, "add")).status_code == 403  # a new location is for operators
    assert client.post(_url(Location, "delete", mine.pk), {"post": "yes"}).status_code == 403  # and deleting one
    assert Location.objects.filter(pk=mine.pk).exists()


def test_api_keys_in_the_admin_show_a_prefix_never_the_key_and_a_new_key_once(world):
    client, mine = world["client"], world["mine"]
    token = ApiToken.objects.filter(location=mine).first()
    listing = client.get(_url(ApiToken, "changelist")).content.decode()
    assert token.masked_key in listing and token.key_hash not in listing
    page = client.get(_url(ApiToken, "change", token.pk)).content.decode()
    assert token.masked_key in page and token.key_hash not in page
    response = client.post(_url(ApiToken, "add"), {"name": "crm", "location": mine.pk}, follow=True)
    shown = [str(m) for m in response.context["messages"] if "shown once" in str(m)]
    key = shown[0].rsplit(" ", 1)[1]
    created = ApiToken.objects.for_key(key)
    assert created.name == "crm" and created.location == mine
    assert key not in client.get(_url(ApiToken, "change", created.pk)).content.decode()  # never again
    assert Client(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/contacts/").status_code == 200


def test_superusers_see_every_location(world):
    root = get_user_model().objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(root)
    for model, _model_admin in _scoped_admins():
        response = client.get(_url(model, "changelist"))
        assert response.status_code == 200, model
        assert response.context["cl"].result_count == model._default_manager.count(), model
    assert client.get(_url(get_user_model(), "changelist")).status_code == 200


def test_staff_cannot_attach_an_existing_user_to_a_location_in_the_admin(world):
    """Joining a location needs consent (issue 15.4): the membership inline adds no one and
    cannot swap the user of a membership, except for operators."""
    from accounts.admin import MembershipInline

    inline = MembershipInline(Location, admin.site)
    staff = get_user_model().objects.get(username="staff-a")
    request = RequestFactory().get("/admin/")
    request.user = staff
    assert not inline.has_add_permission(request, world["mine"])
    assert "user" in inline.get_readonly_fields(request, world["mine"])
    request.user = get_user_model().objects.create_superuser("root", password="pw")
    assert inline.has_add_permission(request, world["mine"]) and "user" not in inline.get_readonly_fields(request, world["mine"])
