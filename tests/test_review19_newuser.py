"""Review of issue 19 as a new user in a browser: what confused a first-time user, pinned.

- A media-only message reads as people say it in the inbox list ("Photo", the PDF's name),
  not "[1 attachment(s)]".
- A number typed with its country code whose digits that country does not use is told
  "check the digits", not "not a phone number … enter the country code".
- Linking the sandbox phone without (or with a wrong) pairing code says so instead of
  reloading the same form silently.
- The waiting queue's ages read "under a minute" / "12 min", not "0 minutes"."""
from datetime import timedelta
from types import SimpleNamespace

from django.utils import timezone

from accounts.models import Account
from accounts.services import account_connect, account_create
from conversations.sending import preview_of
from routing.templatetags.routing_queue import waited


def test_media_only_preview_is_plain():
    def msg(*media):
        return SimpleNamespace(text="", media=list(media))
    assert preview_of(msg({"content_type": "image/jpeg", "url": "u"})) == "Photo"
    assert preview_of(msg({"content_type": "application/pdf", "filename": "invoice.pdf"})) == "invoice.pdf"
    assert preview_of(msg({"content_type": "audio/ogg"})) == "Audio"
    assert preview_of(msg({"content_type": "image/png"}, {"content_type": "application/pdf"})) == "2 attachments"
    assert preview_of(msg()) == ""


def test_a_number_with_its_country_code_but_unused_digits_is_told_to_check_the_digits(agent_client):
    page = agent_client.post("/contacts/new/", {"phone": "+44 7700 900456", "name": "Oliver"}).content.decode()
    assert "“+44 7700 900456” is not a valid GB number: check the digits." in page
    assert "is not a phone number" not in page
    page = agent_client.post("/contacts/new/", {"phone": "12ab", "name": "X"}).content.decode()
    assert "“12ab” is not a phone number." in page


def test_linking_the_sandbox_phone_without_its_code_says_so(admin_client, location):
    account = account_create(location=location, kind="whatsapp", backend="sandbox", name="wa")
    account_connect(account=account)
    response = admin_client.post(f"/sandbox/{account.pk}/link/", {"phone_number": "+14155550123", "link": ""}, follow=True)
    assert "the pairing code is missing, wrong or expired" in response.content.decode()
    assert Account.objects.get(pk=account.pk).status != Account.Status.CONNECTED


def test_waiting_ages_read_as_people_say_them():
    now = timezone.now()
    assert waited(now - timedelta(seconds=20), now) == "under a minute"
    assert waited(now - timedelta(minutes=12), now) == "12 min"
    assert waited(now - timedelta(minutes=65), now) == "1 h 5 min"
