from datetime import datetime, timezone as dt_tz

import pytest

from accounts.providers.base import InboundMessage
from accounts.services import account_connect, account_create
from contacts.models import Contact, Tag
from contacts.services import contact_merge, contact_update, tag_delete, tag_merge, tag_rename
from conversations.models import Conversation, Message
from conversations.services import message_send, webhook_events_record
from whatsnap.errors import ApplicationError


def write_in(account, pid, phone="+14155550123", name="Ada"):
    webhook_events_record(account=account, events=[
        InboundMessage(provider_id=pid, from_phone=phone, name=name, text="hi", at=datetime.now(dt_tz.utc))
    ])
    return Contact.objects.get(location=account.location, phone=phone)


def test_rename_account_tag_keeps_link_and_routing(sandbox_account):
    tag = sandbox_account.tag
    tag_rename(tag=tag, name="sales-leads")
    contact = write_in(sandbox_account, "1")
    assert [t.name for t in contact.tags.all()] == ["sales-leads"]
    assert Tag.objects.get(pk=tag.pk).account == sandbox_account


def test_account_tag_is_protected(sandbox_account, location):
    plain = Tag.objects.create(location=location, name="vip")
    with pytest.raises(ApplicationError):
        tag_delete(tag=sandbox_account.tag)
    with pytest.raises(ApplicationError):
        tag_merge(source=sandbox_account.tag, into=plain)


def test_merge_and_delete_plain_tags(sandbox_account, location):
    contact = write_in(sandbox_account, "1")
    old, new = Tag.objects.create(location=location, name="lead"), Tag.objects.create(location=location, name="prospect")
    contact.tags.add(old)
    assert tag_merge(source=old, into=new) == 1
    assert set(contact.tags.values_list("name", flat=True)) == {"whatsnap-account-sales", "prospect"}
    tag_delete(tag=new)
    assert list(contact.tags.values_list("name", flat=True)) == ["whatsnap-account-sales"]


def test_tags_in_routing_rules_survive_merge_and_block_delete(sandbox_account, location, admin_client):
    from routing.models import RoutingRule

    lead, prospect = Tag.objects.create(location=location, name="lead"), Tag.objects.create(location=location, name="prospect")
    rule = RoutingRule.objects.create(location=location, name="leads first", target="unassigned")
    rule.tags.set([lead])
    with pytest.raises(ApplicationError, match="leads first"):
        tag_delete(tag=lead)  # the rule would lose its only condition and match everyone
    response = admin_client.post(f"/tags/{lead.pk}/", {"action": "delete"}, follow=True)
    assert "routing rule" in response.content.decode() and Tag.objects.filter(pk=lead.pk).exists()
    tag_merge(source=lead, into=prospect)
    assert list(rule.tags.values_list("name", flat=True)) == ["prospect"]


def test_plain_tag_cannot_be_renamed_into_the_account_prefix(location):
    vip = Tag.objects.create(location=location, name="vip")
    with pytest.raises(ApplicationError, match="reserved"):
        tag_rename(tag=vip, name="whatsnap-account-fake")
    assert Tag.objects.get(pk=vip.pk).name == "vip"


def test_tags_page_counts_and_actions(admin_client, agent_client, sandbox_account):
    write_in(sandbox_account, "1")
    html = admin_client.get("/tags/").content.decode()
    assert "whatsnap-account-sales" in html and "(protected)" in html
    admin_client.post("/tags/create/", {"action": "create", "name": "vip"})
    vip = Tag.objects.get(name="vip")
    admin_client.post(f"/tags/{vip.pk}/", {"action": "rename", "name": "VIP"})
    assert Tag.objects.filter(name="VIP").exists()
    assert agent_client.post(f"/tags/{vip.pk}/", {"action": "delete"}).status_code == 403
    response = admin_client.post(f"/tags/{sandbox_account.tag.pk}/", {"action": "delete"}, follow=True)
    assert "delete the account first" in response.content.decode()


def test_contact_edit_name_is_person_set(admin_client, sandbox_account, location):
    contact = write_in(sandbox_account, "1")
    vip = Tag.objects.create(location=location, name="vip")
    admin_client.post(f"/contacts/{contact.pk}/", {"name": "Ada Lovelace", "tags": [vip.pk, sandbox_account.tag.pk]})
    contact.refresh_from_db()
    assert contact.name == "Ada Lovelace" and contact.name_source == "person"
    assert set(contact.tags.values_list("name", flat=True)) == {"vip", "whatsnap-account-sales"}
    write_in(sandbox_account, "2", name="ada's phone")
    contact.refresh_from_db()
    assert contact.name == "Ada Lovelace"


def test_contacts_search_by_phone_name_tag(admin_client, sandbox_account):
    write_in(sandbox_account, "1", phone="+14155550123", name="Ada")
    write_in(sandbox_account, "2", phone="+14155550999", name="Bob")
    page = lambda q: admin_client.get("/contacts/", {"q": q}).content.decode()
    assert "Ada" in page("0123") and "Bob" not in page("0123")
    assert "Bob" in page("bob") and "Ada" not in page("bob")
    assert "Ada" in page("whatsnap-account-sales") and "Bob" in page("whatsnap-account-sales")


def test_sandbox_is_labelled_in_the_inbox_list_and_on_the_contact(admin_client, sandbox_account):
    contact = write_in(sandbox_account, "1")
    assert 'chip sandbox">Sandbox' in admin_client.get("/inbox/list/?view=all").content.decode()
    assert 'chip sandbox">Sandbox' in admin_client.get(f"/contacts/{contact.pk}/").content.decode()


def test_paging_a_tag_filtered_list_keeps_the_tag(admin_client, sandbox_account, location):
    vip = Tag.objects.create(location=location, name="vip")
    contacts = [Contact(location=location, phone=f"+1415555{2000 + i}", name=f"P{i}") for i in range(60)]
    Contact.objects.bulk_create(contacts)
    for contact in Contact.objects.filter(location=location):
        contact.tags.add(vip)
    html = admin_client.get("/contacts/", {"tag": vip.pk}).content.decode()
    assert f"&tag={vip.pk}&page=2" in html
    second = admin_client.get("/contacts/", {"tag": vip.pk, "page": 2}).content.decode()
    assert "Page 2 of 2" in second


def test_merge_two_numbers_of_one_person(admin_client, sandbox_account, location):
    mac = account_create(location=location, kind="imessage", backend="sandbox", name="mac", phone_number="+14155550112")
    account_connect(account=mac)
    a = write_in(sandbox_account, "1", phone="+14155550123", name="Ada")
    b = write_in(sandbox_account, "2", phone="+14155550124", name="")
    write_in(mac, "3", phone="+14155550124")
    admin_client.post(f"/contacts/{a.pk}/", {"action": "merge", "source": "+14155550124"})
    assert not Contact.objects.filter(pk=b.pk).exists()
    assert set(a.tags.values_list("name", flat=True)) == {"whatsnap-account-sales", "whatsnap-account-mac"}
    assert Conversation.objects.filter(contact=a).count() == 2  # sales thread folded, mac thread moved
    assert Message.objects.filter(conversation__contact=a).count() == 3
    with pytest.raises(ApplicationError):
        contact_merge(source=a, into=a)


def test_contact_of_other_location_is_404(outsider_client, sandbox_account):
    contact = write_in(sandbox_account, "1")
    assert outsider_client.get(f"/contacts/{contact.pk}/").status_code == 404


def test_a_person_records_an_opt_out_asked_for_in_words_and_only_an_admin_opts_back_in(
        agent_client, admin_client, outsider_client, location, sandbox_account):
    """WhatsApp has no STOP keyword: an agent marks the contact opted out on its page, and every
    send (replies, broadcasts, GHL) then refuses it; opting back in is an admin's call."""
    contact = Contact.objects.create(location=location, phone="+14155550190", name="Wanda")
    conversation = Conversation.objects.create(location=location, contact=contact, account=sandbox_account)
    url = f"/contacts/{contact.pk}/"
    assert outsider_client.post(url, {"action": "opt_out"}).status_code == 404
    assert agent_client.get(url).content.decode().count('id="opt-out"') == 1
    agent_client.post(url, {"action": "opt_out"})
    contact.refresh_from_db()
    assert contact.opted_out and contact.opted_out_at
    with pytest.raises(ApplicationError, match="opted out"):
        message_send(conversation=conversation, text="Our summer sale")
    page = agent_client.get(url).content.decode()
    assert 'id="opt-in"' not in page  # an agent is not offered it ...
    refused = agent_client.post(url, {"action": "opt_in"}, follow=True).content.decode()
    assert "Only an admin can opt a contact back in" in refused  # ... nor allowed it
    contact.refresh_from_db()
    assert contact.opted_out
    assert 'id="opt-in"' in admin_client.get(url).content.decode()
    admin_client.post(url, {"action": "opt_in"})
    contact.refresh_from_db()
    assert not contact.opted_out and contact.opted_out_at is None
