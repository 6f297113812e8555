"""Which account can reach whom (issue 18): accounts/reach.py."""
import pytest

from accounts.models import Account
from accounts.reach import can_send_sms, channel_of, unreachable_reason
from contacts.models import Contact


def _account(kind, status=Account.Status.CONNECTED):
    return Account(name="x", kind=kind, status=status, backend="sandbox")


@pytest.mark.parametrize("kind, channel, sms", [
    (Account.Kind.WHATSAPP, "whatsapp", False), (Account.Kind.TWILIO, "sms", True),
    (Account.Kind.ANDROID_SMS, "sms", True), (Account.Kind.IMESSAGE, "imessage", True)])
def test_channels(kind, channel, sms):
    assert channel_of(_account(kind)) == channel
    assert can_send_sms(_account(kind)) is sms


def test_a_phone_number_is_reachable_by_every_connected_account_and_by_no_disconnected_one():
    ada = Contact(phone="+14155550100")
    for kind in Account.Kind.values:
        assert unreachable_reason(_account(kind), ada) is None
    assert "not connected" in unreachable_reason(_account(Account.Kind.TWILIO, Account.Status.DISCONNECTED), ada)


def test_a_lid_only_person_is_reachable_only_on_whatsapp():
    lid = Contact(phone="123@lid", phone_is_e164=False, whatsapp_lid="123@lid")
    assert unreachable_reason(_account(Account.Kind.WHATSAPP), lid) is None
    assert "only a WhatsApp account" in unreachable_reason(_account(Account.Kind.TWILIO), lid)


def test_handles_groups_and_short_codes():
    assert unreachable_reason(_account(Account.Kind.IMESSAGE), Contact(phone="ada@example.com", phone_is_e164=False)) is None
    assert "not a phone number" in unreachable_reason(_account(Account.Kind.TWILIO), Contact(phone="ada@example.com", phone_is_e164=False))
    assert "not a phone number" in unreachable_reason(_account(Account.Kind.WHATSAPP), Contact(phone="72345", phone_is_e164=False))
    assert "group chat" in unreachable_reason(_account(Account.Kind.WHATSAPP), Contact(phone="1203@g.us", kind="group", phone_is_e164=False))
