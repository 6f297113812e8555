"""The contact list, as filtered on the page, to a CSV file: streamed row by row from a
server-side cursor (any size, constant memory). Safe to open in a spreadsheet: a cell that
starts with = + - @ (or a tab or carriage return) is prefixed with ' so it is never read as a
formula (OWASP "CSV injection"); our import reads such cells back as they were."""
import csv
from collections.abc import Iterator

from django.db.models import Prefetch

from contacts.fields import fields_of
from contacts.models import ContactFieldValue

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BASE_COLUMNS = ["Name", "Phone", "Tags", "Opted out", "Owner", "Created"]


def escape(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Line:
    """csv.writer's file: hands back what it was given to write."""

    def write(self, value):
        return value


def export_rows(location, contacts) -> Iterator[str]:
    """CSV lines of the contacts (selectors.contacts_search, filtered), header first."""
    fields = fields_of(location)
    writer = csv.writer(_Line())
    yield "\ufeff" + writer.writerow([escape(c) for c in BASE_COLUMNS + [f.name for f in fields]])  # BOM: Excel reads UTF-8
    queryset = contacts.select_related("assignee").prefetch_related(  # tags come prefetched by the list's query
        Prefetch("field_values", queryset=ContactFieldValue.objects.only("contact_id", "field_id", "value")))
    for contact in queryset.iterator(chunk_size=1000):
        values = {v.field_id: v.value for v in contact.field_values.all()}
        owner = contact.assignee.get_full_name() or contact.assignee.get_username() if contact.assignee else ""
        row = [contact.name, contact.phone, ", ".join(t.name for t in contact.tags.all()), "yes" if contact.opted_out else "",
               owner, contact.created_at.date().isoformat()] + [values.get(f.pk, "") for f in fields]
        yield writer.writerow([escape(cell) for cell in row])
