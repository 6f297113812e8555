"""Merge fields (issue 18, point 5): values, fallbacks, refusal of unknown fields."""
import pytest
from django.contrib.auth.models import User

from contacts.models import Contact
from conversations.merge_fields import MergeContext, merge_fields_check, merge_fields_render
from whatsnap.errors import ApplicationError


def test_fields_take_the_contacts_values_and_fallbacks_when_missing():
    ada = Contact(name="Ada Lovelace King", phone="+14155550100")
    text = "Hi {{first_name|there}} {{ last_name }}, {{name}} at {{phone}}"
    assert merge_fields_render(text, MergeContext(contact=ada)) == "Hi Ada Lovelace King, Ada Lovelace King at +14155550100"
    nameless = Contact(name="", phone="+14155550101")
    assert merge_fields_render("Hi {{first_name|there}}!", MergeContext(contact=nameless)) == "Hi there!"
    assert merge_fields_render("Hi {{first_name}}, welcome", MergeContext(contact=nameless)) == "Hi, welcome"


def test_account_and_agent_fields():
    class Acc:
        name = "Sales"
    agent = User(username="bob", first_name="Bob", last_name="Stone")
    assert merge_fields_render("{{agent}} from {{account}}", MergeContext(account=Acc(), agent=agent)) == "Bob Stone from Sales"


def test_a_number_whatsapp_never_shared_is_not_shown_as_a_phone():
    lid = Contact(name="", phone="123456@lid", phone_is_e164=False, whatsapp_lid="123456@lid")
    assert merge_fields_render("Number: {{phone|unknown}}", MergeContext(contact=lid)) == "Number: unknown"


@pytest.mark.parametrize("text, words", [
    ("Hi {{frist_name}}", "Unknown merge field {{frist_name}}"),
    ("Hi {{first_name", "not closed"),
    ("Hi first_name}}", "not closed"),
])
def test_unknown_or_broken_fields_are_refused_with_the_list(text, words):
    with pytest.raises(ApplicationError) as caught:
        merge_fields_check(text)
    assert words in caught.value.message


def test_plain_text_passes_untouched():
    merge_fields_check("Hello, no fields here")
    assert merge_fields_render("Hello  {not a field}", MergeContext()) == "Hello  {not a field}"
