"""{% custom_field_rows contact as rows %}: the location's custom fields with the contact's values,
for the partial templates/contacts/_custom_fields.html wherever a contact is shown."""
from django import template

from contacts.fields import rows_of

register = template.Library()


@register.simple_tag
def custom_field_rows(contact):
    return rows_of(contact) if contact is not None and contact.pk else []
