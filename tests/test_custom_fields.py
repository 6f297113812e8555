"""Custom fields: defined per location by admins (text, number, date, choice), values checked
per kind, edited by members on the contact page and in the inbox's panel, filterable, in the
REST API, and sent to GHL's custom fields where mapped."""
import datetime
from decimal import Decimal

import pytest

from contacts.fields import clean_value, contact_fields_set, field_define
from contacts.models import Contact, ContactFieldValue, CustomField
from whatsnap.errors import ApplicationError
from tests.test_ghl import drain, ghl, inbound, installed, sales  # noqa: F401  (fixtures)


@pytest.fixture
def plan(location):
    return field_define(location=location, name="Plan", kind="choice", choices="Gold, Silver\nBronze", ghl_field="contact.plan")


def test_values_are_checked_per_kind(location, plan):
    seats = field_define(location=location, name="Seats", kind="number")
    birthday = field_define(location=location, name="Birthday", kind="date")
    note = field_define(location=location, name="Note", kind="text")
    assert plan.choices == ["Gold", "Silver", "Bronze"] and plan.key == "plan"
    assert clean_value(plan, "silver") == ("Silver", None, None)
    assert clean_value(seats, " 1 200.50 ") == ("1200.5", Decimal("1200.5"), None)
    assert clean_value(birthday, "2025-03-31") == ("2025-03-31", None, datetime.date(2025, 3, 31))
    assert clean_value(note, "") == ("", None, None)
    for field, bad, message in [(seats, "12abc", "Seats: “12abc” is not a number (e.g. 42 or 3.5)."),
                                (seats, "NaN", "Seats: “NaN” is not a number (e.g. 42 or 3.5)."),
                                (birthday, "31.03.2025", "Birthday: “31.03.2025” is not a date; enter it as YYYY-MM-DD, e.g. 2025-03-31."),
                                (plan, "Platinum", "Plan: “Platinum” is not one of its options (Gold, Silver, Bronze)."),
                                (note, "x" * 501, "Note: at most 500 characters.")]:
        with pytest.raises(ApplicationError) as exc:
            clean_value(field, bad)
        assert exc.value.message == message
    with pytest.raises(ApplicationError, match="needs its options"):
        field_define(location=location, name="Empty", kind="choice", choices=" , ")
    with pytest.raises(ApplicationError, match="exists already"):
        field_define(location=location, name="plan", kind="text")


def test_one_bad_value_writes_nothing(location, plan):
    seats = field_define(location=location, name="Seats", kind="number")
    contact = Contact.objects.create(location=location, phone="+14155550100")
    with pytest.raises(ApplicationError):
        contact_fields_set(contact=contact, values={plan.key: "Gold", seats.key: "many"})
    assert not ContactFieldValue.objects.exists()
    assert contact_fields_set(contact=contact, values={plan.key: "Gold", seats.key: "3"})
    assert not contact_fields_set(contact=contact, values={plan.key: "gold"})  # unchanged
    assert contact_fields_set(contact=contact, values={seats.key: ""})  # cleared
    assert dict(ContactFieldValue.objects.values_list("field__key", "value")) == {"plan": "Gold"}


def test_admins_define_fields_agents_edit_values_in_the_panel_and_on_the_page(admin_client, agent_client, location, sandbox_account):
    assert agent_client.post("/contacts/fields/", {"action": "create", "name": "Plan", "kind": "text"}).status_code == 403
    response = admin_client.post("/contacts/fields/", {"action": "create", "name": "Tier", "kind": "choice", "choices": ""})
    assert response.status_code == 422 and "A choice field needs its options" in response.content.decode()
    admin_client.post("/contacts/fields/", {"action": "create", "name": "Tier", "kind": "choice", "choices": "A, B"})
    admin_client.post("/contacts/fields/", {"action": "create", "name": "Renewal", "kind": "date"})
    assert list(CustomField.objects.values_list("key", "kind")) == [("tier", "choice"), ("renewal", "date")]
    from tests.test_contacts import write_in

    contact = write_in(sandbox_account, "1")
    conversation = contact.conversations.get()
    panel = agent_client.get(f"/inbox/{conversation.pk}/panel/").content.decode()
    assert f'hx-post="/contacts/{contact.pk}/fields/"' in panel and 'name="renewal"' in panel and "<option>B</option>" in panel
    bad = agent_client.post(f"/contacts/{contact.pk}/fields/", {"tier": "B", "renewal": "soon"}, HTTP_HX_REQUEST="true")
    assert "Renewal: “soon” is not a date" in bad.content.decode() and 'value="soon"' in bad.content.decode()
    assert not ContactFieldValue.objects.exists()
    good = agent_client.post(f"/contacts/{contact.pk}/fields/", {"tier": "B", "renewal": "2026-01-31"}, HTTP_HX_REQUEST="true")
    assert "Saved." in good.content.decode()
    page = agent_client.get(f"/contacts/{contact.pk}/").content.decode()
    assert 'value="2026-01-31"' in page and "<option selected>B</option>" in page


def test_contact_list_filters_by_custom_fields(admin_client, location):
    seats = field_define(location=location, name="Seats", kind="number")
    renewal = field_define(location=location, name="Renewal", kind="date")
    city = field_define(location=location, name="City", kind="text")
    for i, (n, day, town) in enumerate([("2", "2025-01-10", "Berlin"), ("15", "2025-06-01", "Bern"), ("40", "2026-01-01", "Paris")]):
        contact = Contact.objects.create(location=location, phone=f"+1415555010{i}", name=f"C{i}")
        contact_fields_set(contact=contact, values={seats.key: n, renewal.key: day, city.key: town})

    def names(**params):
        return sorted(c.name for c in admin_client.get("/contacts/", params).context["page"])
    assert names(f_seats_min="10") == ["C1", "C2"]  # numeric, not text order ("2" > "10" as text)
    assert names(f_seats_min="3", f_seats_max="20") == ["C1"]
    assert names(f_renewal_max="2025-12-31") == ["C0", "C1"]
    assert names(f_city="ber") == ["C0", "C1"]
    assert names(f_city="ber", f_seats_min="10") == ["C1"]
    response = admin_client.get("/contacts/", {"f_seats_min": "ten"})
    assert response.context["page"].paginator.count == 0 and "Seats: “ten” is not a number" in response.content.decode()


def test_api_reads_writes_and_validates_custom_fields(api_client, location, plan, other_location):
    field_define(location=location, name="Seats", kind="number")
    field_define(location=other_location, name="Secret", kind="text")
    created = api_client.post("/api/v1/contacts/", {"phone": "+14155550100", "name": "Ada", "custom_fields": {"plan": "gold", "seats": "3"}},
                              format="json")
    assert created.status_code == 201, created.content
    assert created.json()["custom_fields"] == {"plan": "Gold", "seats": "3"}
    pk = created.json()["id"]
    bad = api_client.patch(f"/api/v1/contacts/{pk}/", {"name": "Changed", "custom_fields": {"seats": "x", "secret": "y"}}, format="json")
    assert bad.status_code == 400
    body = bad.json()
    assert "Seats: “x” is not a number" in str(body) and "No custom field 'secret' in this location." in str(body)
    assert api_client.get(f"/api/v1/contacts/{pk}/").json()["name"] == "Ada"  # nothing half-written
    ok = api_client.patch(f"/api/v1/contacts/{pk}/", {"custom_fields": {"seats": "", "plan": "Silver"}}, format="json")
    assert ok.json()["custom_fields"] == {"plan": "Silver"}
    listed = api_client.get("/api/v1/contacts/", {"f_plan": "Silver"}).json()
    assert [c["id"] for c in listed["results"]] == [pk]
    assert api_client.get("/api/v1/contacts/", {"f_plan": "Gold"}).json()["results"] == []
    fields = api_client.get("/api/v1/custom-fields/").json()["results"]
    assert [(f["key"], f["kind"], f["ghl_field"]) for f in fields] == [("plan", "choice", "contact.plan"), ("seats", "number", "")]


def test_custom_field_definitions_api_admin_writes_agent_reads(api_client, location, agent_user):
    from accounts.services import api_token_create
    from rest_framework.test import APIClient

    made = api_client.post("/api/v1/custom-fields/", {"name": "Birthday", "kind": "date"}, format="json")
    assert made.status_code == 201 and made.json()["key"] == "birthday"
    assert api_client.post("/api/v1/custom-fields/", {"name": "X", "kind": "color"}, format="json").status_code == 400
    _token, key = api_token_create(location=location, user=agent_user, name="agent")
    agent = APIClient()
    agent.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert agent.get("/api/v1/custom-fields/").status_code == 200
    assert agent.post("/api/v1/custom-fields/", {"name": "Y", "kind": "text"}, format="json").status_code == 403
    pk = made.json()["id"]
    assert api_client.patch(f"/api/v1/custom-fields/{pk}/", {"ghl_field": "AbCdEfGhIjKlMnOpQrSt"}, format="json").json()["ghl_field"] == "AbCdEfGhIjKlMnOpQrSt"
    assert api_client.delete(f"/api/v1/custom-fields/{pk}/").status_code == 204


def test_another_locations_fields_and_contacts_stay_out_of_reach(admin_client, outsider_client, location, plan, api_client, other_location):
    contact = Contact.objects.create(location=location, phone="+14155550100")
    assert outsider_client.post(f"/contacts/{contact.pk}/fields/", {"plan": "Gold"}).status_code == 404
    assert outsider_client.post("/contacts/fields/", {"action": "delete", "pk": plan.pk}).status_code in (403, 404)
    assert CustomField.objects.filter(pk=plan.pk).exists() and not ContactFieldValue.objects.exists()
    theirs = field_define(location=other_location, name="Plan", kind="text")  # the same key elsewhere is theirs
    assert api_client.get(f"/api/v1/custom-fields/{theirs.pk}/").status_code == 404
    assert admin_client.post("/contacts/fields/", {"action": "delete", "pk": theirs.pk}).status_code == 404
    mixed = Contact.objects.create(location=other_location, phone="+14155550100")
    with pytest.raises(ApplicationError):
        contact_fields_set(contact=mixed, values={"plan": "Gold"} | {"nope": "1"})


@pytest.mark.django_db(transaction=True)
def test_mapped_fields_reach_ghl_as_its_custom_fields(installed, ghl, sales, location):  # noqa: F811
    """GHL's contact upsert and update take customFields [{id|key, field_value}]
    (GoHighLevel/highlevel-api-docs, apps/contacts.json: UpsertContactDto / UpdateContactDto
    customFields, customFieldsInputStringSchema "Pass either `id` or `key`")."""
    plan = field_define(location=location, name="Plan", kind="choice", choices="Gold, Silver", ghl_field="contact.plan")
    seats = field_define(location=location, name="Seats", kind="number", ghl_field="6dvNaf7VhkQ9snc5vnjJ")
    field_define(location=location, name="Private", kind="text")  # not mapped: stays here
    ghl_id = ghl.add_contact("ghl-loc-1", phone="+14155550123", name="Ada", customFields={"6dvNaf7VhkQ9snc5vnjJ": 99})
    inbound(sales, "p1")
    drain(location)
    contact = Contact.objects.get()
    assert contact.ghl_contact_id == ghl_id
    assert ghl.contacts[ghl_id]["customFields"] == {"6dvNaf7VhkQ9snc5vnjJ": 99}  # our empty values never wipe GHL's
    contact_fields_set(contact=contact, values={plan.key: "Gold", seats.key: "3", "private": "secret"})
    drain(location)
    assert ghl.contacts[ghl_id]["customFields"] == {"6dvNaf7VhkQ9snc5vnjJ": 3, "contact.plan": "Gold"}
    put = [c for c in ghl.api_calls("PUT", f"/contacts/{ghl_id}")][-1]
    assert sorted(put.json["customFields"], key=str) == sorted([{"key": "contact.plan", "field_value": "Gold"},
                                                               {"id": "6dvNaf7VhkQ9snc5vnjJ", "field_value": 3}], key=str)
    calls = len(ghl.api_calls())
    contact_fields_set(contact=contact, values={"private": "other"})
    drain(location)
    assert len(ghl.api_calls()) == calls  # an unmapped field costs no call
    contact_fields_set(contact=contact, values={plan.key: ""})
    drain(location)
    assert ghl.contacts[ghl_id]["customFields"]["contact.plan"] == ""  # cleared there too
    assert ghl.api_calls("PUT", f"/contacts/{ghl_id}")[-1].json["customFields"] == [{"key": "contact.plan", "field_value": ""}]
    got = ghl.contact_view(ghl.contacts[ghl_id])["customFields"]
    assert {"id": "6dvNaf7VhkQ9snc5vnjJ", "value": 3} in got
