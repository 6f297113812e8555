"""/api/v1/contacts/ and /api/v1/tags/."""
from accounts.services import account_create
from contacts.models import Contact, Tag
from contacts.services import tag_create
from tests.test_api_support import *  # noqa: F401,F403  (fixtures)
from tests.test_api_support import assert_error, receive


def _ids(response):
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def test_contact_found_by_phone_in_any_format_with_its_tag(api_client, sandbox_account):
    receive(sandbox_account, phone="+14155550123", name="Ada")
    response = api_client.get("/api/v1/contacts/", {"phone": "(415) 555-0123"})
    (contact,) = response.json()["results"]
    assert contact["phone"] == "+14155550123" and contact["name"] == "Ada" and contact["name_source"] == "platform"
    assert contact["tags"] == ["whatsnap-account-sales"]
    assert contact["accounts"] == [sandbox_account.pk] and contact["platforms"] == ["android_sms"]
    assert api_client.get(f"/api/v1/contacts/{contact['id']}/").json() == contact


def test_contact_filters(api_client, location, sandbox_account, agent_user):
    other = account_create(location=location, kind="whatsapp", backend="sandbox", name="Support")
    receive(sandbox_account, phone="+14155550123", name="Ada")
    receive(sandbox_account, phone="+14155550124", name="Bob")
    ada, bob = Contact.objects.get(name="Ada"), Contact.objects.get(name="Bob")
    Contact.objects.filter(pk=bob.pk).update(assignee=agent_user)
    assert _ids(api_client.get("/api/v1/contacts/")) == [bob.pk, ada.pk]
    assert _ids(api_client.get("/api/v1/contacts/", {"tag": "whatsnap-account-sales"})) == [bob.pk, ada.pk]
    assert _ids(api_client.get("/api/v1/contacts/", {"tag": other.tag.name})) == []
    assert _ids(api_client.get("/api/v1/contacts/", {"account": sandbox_account.pk, "ordering": "id"})) == [ada.pk, bob.pk]
    assert _ids(api_client.get("/api/v1/contacts/", {"account": other.pk})) == []
    assert _ids(api_client.get("/api/v1/contacts/", {"assignee": agent_user.pk})) == [bob.pk]
    assert _ids(api_client.get("/api/v1/contacts/", {"q": "ada"})) == [ada.pk]
    assert _ids(api_client.get("/api/v1/contacts/", {"q": "555-0124"})) == [bob.pk]
    assert_error(api_client.get("/api/v1/contacts/", {"account": "abc"}), 400, "invalid", "account")


def test_create_contact_with_person_set_name_and_tags(api_client, location):
    tag_create(location=location, name="vip")
    response = api_client.post("/api/v1/contacts/", {"phone": "+1 (415) 555-0150", "name": "Cy", "tags": ["vip"]}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["phone"], body["name"], body["name_source"], body["tags"]) == ("+14155550150", "Cy", "person", ["vip"])
    duplicate = assert_error(api_client.post("/api/v1/contacts/", {"phone": "+14155550150"}, format="json"),
                             400, "contact_exists", "phone")
    assert duplicate["contact"] == body["id"]
    assert_error(api_client.post("/api/v1/contacts/", {"phone": "nope"}, format="json"), 400, "invalid", "phone")
    assert_error(api_client.post("/api/v1/contacts/", {"phone": "+14155550151", "tags": ["ghost"]}, format="json"),
                 400, "invalid", "tags")
    assert not Contact.objects.filter(phone="+14155550151").exists()


def test_update_name_is_person_set_and_kept_against_platform_names(api_client, sandbox_account):
    receive(sandbox_account, phone="+14155550123", name="Ada")
    contact = Contact.objects.get()
    response = api_client.patch(f"/api/v1/contacts/{contact.pk}/", {"name": "Ada Lovelace"}, format="json")
    assert response.status_code == 200 and response.json()["name_source"] == "person"
    assert response.json()["tags"] == ["whatsnap-account-sales"]  # untouched
    receive(sandbox_account, phone="+14155550123", name="ada_l")
    contact.refresh_from_db()
    assert contact.name == "Ada Lovelace"


def test_add_and_remove_contact_tags(api_client, location, sandbox_account):
    tag_create(location=location, name="vip")
    receive(sandbox_account)
    contact = Contact.objects.get()
    response = api_client.post(f"/api/v1/contacts/{contact.pk}/tags/", {"tag": "vip"}, format="json")
    assert response.status_code == 200 and response.json()["tags"] == ["vip", "whatsnap-account-sales"]
    assert api_client.post(f"/api/v1/contacts/{contact.pk}/tags/", {"tag": "vip"}, format="json").status_code == 200
    assert_error(api_client.post(f"/api/v1/contacts/{contact.pk}/tags/", {"tag": "ghost"}, format="json"), 400, "invalid", "tags")
    response = api_client.delete(f"/api/v1/contacts/{contact.pk}/tags/vip/")
    assert response.status_code == 200 and response.json()["tags"] == ["whatsnap-account-sales"]
    assert_error(api_client.delete(f"/api/v1/contacts/{contact.pk}/tags/vip/"), 400, "not_tagged")
    response = api_client.patch(f"/api/v1/contacts/{contact.pk}/", {"tags": ["vip"]}, format="json")
    assert response.json()["tags"] == ["vip"]


def test_agent_token_sees_contacts_and_tags_but_cannot_manage_tags(agent_api, location, sandbox_account):
    receive(sandbox_account)
    assert len(agent_api.get("/api/v1/contacts/").json()["results"]) == 1
    assert agent_api.get("/api/v1/tags/").status_code == 200
    tag = Tag.objects.get()
    body = assert_error(agent_api.post("/api/v1/tags/", {"name": "vip"}, format="json"), 403, "permission_denied")
    assert body["detail"] == "Agent-scoped tokens cannot manage tags; use an admin token."
    assert_error(agent_api.patch(f"/api/v1/tags/{tag.pk}/", {"name": "x"}, format="json"), 403)
    assert_error(agent_api.delete(f"/api/v1/tags/{tag.pk}/"), 403)


def test_other_locations_contacts_are_invisible(other_api, sandbox_account):
    receive(sandbox_account)
    contact = Contact.objects.get()
    assert other_api.get("/api/v1/contacts/").json()["results"] == []
    assert other_api.get("/api/v1/contacts/", {"phone": contact.phone}).json()["results"] == []
    assert_error(other_api.get(f"/api/v1/contacts/{contact.pk}/"), 404, "not_found")
    assert_error(other_api.patch(f"/api/v1/contacts/{contact.pk}/", {"name": "x"}, format="json"), 404)
    assert_error(other_api.post(f"/api/v1/contacts/{contact.pk}/tags/", {"tag": "x"}, format="json"), 404)
    tag = Tag.objects.get()
    assert_error(other_api.get(f"/api/v1/tags/{tag.pk}/"), 404)
    assert_error(other_api.delete(f"/api/v1/tags/{tag.pk}/"), 404)


# --- tags --------------------------------------------------------------------------------------
def test_tags_list_with_contact_counts(api_client, location, sandbox_account):
    tag_create(location=location, name="vip")
    receive(sandbox_account, phone="+14155550123")
    receive(sandbox_account, phone="+14155550124")
    body = api_client.get("/api/v1/tags/").json()
    assert [(t["name"], t["contact_count"], t["account"]) for t in body["results"]] == [
        ("vip", 0, None), ("whatsnap-account-sales", 2, sandbox_account.pk)]
    assert [t["name"] for t in api_client.get("/api/v1/tags/", {"q": "VI"}).json()["results"]] == ["vip"]


def test_tag_create_rename_merge_delete(api_client, location, sandbox_account):
    response = api_client.post("/api/v1/tags/", {"name": "vip"}, format="json")
    assert response.status_code == 201 and response.json()["contact_count"] == 0
    vip = response.json()["id"]
    assert_error(api_client.post("/api/v1/tags/", {"name": "vip"}, format="json"), 400, "invalid", "name")
    assert_error(api_client.post("/api/v1/tags/", {"name": "whatsnap-account-x"}, format="json"), 400, "invalid", "name")
    response = api_client.patch(f"/api/v1/tags/{vip}/", {"name": "gold"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "gold"
    receive(sandbox_account)
    contact = Contact.objects.get()
    api_client.post(f"/api/v1/contacts/{contact.pk}/tags/", {"tag": "gold"}, format="json")
    other = api_client.post("/api/v1/tags/", {"name": "premium"}, format="json").json()["id"]
    response = api_client.post(f"/api/v1/tags/{vip}/merge/", {"into": other}, format="json")
    assert response.status_code == 200 and response.json()["contact_count"] == 1
    assert not Tag.objects.filter(pk=vip).exists()
    assert api_client.delete(f"/api/v1/tags/{other}/").status_code == 204
    assert sorted(t.name for t in contact.tags.all()) == ["whatsnap-account-sales"]


def test_account_tags_are_protected(api_client, sandbox_account, other_location):
    tag = sandbox_account.tag
    body = assert_error(api_client.delete(f"/api/v1/tags/{tag.pk}/"), 400)
    assert "delete the account first" in body["detail"]
    other_tag = tag_create(location=other_location, name="theirs")
    assert_error(api_client.post(f"/api/v1/tags/{tag.pk}/merge/", {"into": other_tag.pk}, format="json"), 400, "invalid", "into")
    response = api_client.patch(f"/api/v1/tags/{tag.pk}/", {"name": "sales-line"}, format="json")
    assert response.status_code == 200 and response.json()["account"] == sandbox_account.pk  # renaming keeps the link
