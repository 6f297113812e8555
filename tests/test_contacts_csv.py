"""Contacts: Add contact, CSV import (mapping, preview, dedupe, bad rows, tags, report, size
limit) and CSV export (the list's filters, formula-safe cells)."""
import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from contacts import csv_import
from contacts.csv_export import escape
from contacts.fields import contact_fields_set, field_define
from contacts.models import Contact, ContactImport, ContactImportPhone, Tag
from whatsnap import events


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def upload(client, text: str, name="people.csv", encoding="utf-8"):
    response = client.post("/contacts/import/", {"file": SimpleUploadedFile(name, text.encode(encoding), content_type="text/csv")})
    return response


def run_import(client, django_capture_on_commit_callbacks, text, *, mapping=None, tags=(), update_existing=True, name="people.csv"):
    response = upload(client, text, name=name)
    assert response.status_code == 302, response.content.decode()[:2000]
    imp = ContactImport.objects.latest("pk")
    page = client.get(f"/contacts/import/{imp.pk}/")
    guessed = page.context["columns"]
    data = {f"col_{c['index']}": c["target"] for c in guessed}
    data.update(mapping or {})
    data["tags"] = [t.pk for t in tags]
    if update_existing:
        data["update_existing"] = "on"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/contacts/import/{imp.pk}/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    imp.refresh_from_db()
    return imp


def test_import_maps_columns_normalises_phones_dedupes_and_reports_skipped_rows(
        admin_client, location, django_capture_on_commit_callbacks, media):
    location.country = "GB"
    location.save()
    existing = Contact.objects.create(location=location, phone="+447400123456", name="Old name")
    vip = Tag.objects.create(location=location, name="vip")
    text = ("Mobile,First Name,Last Name,Labels,Notes\n"
            "07400 123456,Ada,Lovelace,\"friends, 2025\",x\n"      # GB national form: the existing contact
            "+1 415 555 0100,Grace,Hopper,friends,\n"
            "not a number,Bad,Row,,\n"
            ",No,Phone,,\n"
            "\n"                                                  # blank line: not a row
            "+1 (415) 555-0100,Grace,Again,,\n"                   # the same phone as row 3
            "'+14155550101,Quoted,Export,,\n")                    # our export's escaped cell reads back
    recorded = []
    with events.captured() as recorded:
        imp = run_import(admin_client, django_capture_on_commit_callbacks, text, tags=[vip])
    assert imp.status == ContactImport.Status.DONE, imp.error
    assert (imp.created_count, imp.updated_count, imp.skipped_count) == (2, 1, 3)
    assert imp.skipped == [[4, "“not a number” is not a phone number"], [5, "no phone number"], [7, "the same phone as row 3"]]
    existing.refresh_from_db()
    assert existing.name == "Ada Lovelace"
    assert sorted(t.name for t in existing.tags.all()) == ["2025", "friends", "vip"]
    grace = Contact.objects.get(location=location, phone="+14155550100")
    assert grace.name == "Grace Hopper" and grace.name_source == Contact.NameSource.PERSON
    assert sorted(t.name for t in grace.tags.all()) == ["friends", "vip"]
    assert Contact.objects.get(location=location, phone="+14155550101").name == "Quoted Export"
    assert Contact.objects.filter(location=location).count() == 3
    assert [e.name for e in recorded].count("contact.created") == 2
    assert {e["contact"].pk for e in recorded if e.name == "contact.updated"} == set(
        Contact.objects.filter(location=location).values_list("pk", flat=True))  # GHL hears of each
    # the file is deleted once imported, the phones it met too; only the report stays
    assert not list(media.rglob("*.csv")) and not ContactImportPhone.objects.exists()
    report = admin_client.get(f"/contacts/import/{imp.pk}/report/").content.decode()
    assert "the same phone as row 3" in report and "2</strong> contacts added" in report


def test_mapping_page_previews_first_rows_and_needs_a_phone_column(admin_client, location, django_capture_on_commit_callbacks):
    upload(admin_client, "Who;Cell;Extra\n" + "".join(f"P{i};+1415555{i:04d};e\n" for i in range(8)))
    imp = ContactImport.objects.get()
    assert imp.delimiter == ";"
    page = admin_client.get(f"/contacts/import/{imp.pk}/")
    assert [c["target"] for c in page.context["columns"]] == ["", "phone", ""]  # guessed from the headers
    assert len(page.context["preview"]) == 5 and page.context["preview"][0] == ["P0", "+14155550000", "e"]
    response = admin_client.post(f"/contacts/import/{imp.pk}/", {"col_0": "name", "col_1": "", "col_2": ""})
    assert response.status_code == 422 and "Choose the column that holds the phone number." in response.content.decode()
    response = admin_client.post(f"/contacts/import/{imp.pk}/", {"col_0": "name", "col_1": "phone", "col_2": "name"})
    assert "Name is chosen twice" in response.content.decode()
    assert not Contact.objects.exists() and ContactImport.objects.get().status == "mapping"
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/contacts/import/{imp.pk}/", {"col_0": "name", "col_1": "phone", "col_2": ""})
    assert sorted(Contact.objects.values_list("name", flat=True)) == [f"P{i}" for i in range(8)]


def test_custom_field_columns_are_checked_per_row_and_existing_can_be_left_alone(
        admin_client, location, django_capture_on_commit_callbacks):
    field_define(location=location, name="Plan", kind="choice", choices="Gold, Silver")
    field_define(location=location, name="Seats", kind="number")
    Contact.objects.create(location=location, phone="+14155550100", name="Keep me")
    text = "phone,name,plan,seats\n+14155550100,Changed,Gold,3\n+14155550102,New,gold,4.50\n+14155550103,Bad,Platinum,1\n+14155550104,Bad2,Silver,many\n"
    imp = run_import(admin_client, django_capture_on_commit_callbacks, text, update_existing=False)
    assert imp.skipped == [[2, "a contact with this phone exists already (not updated)"],
                           [4, "Plan: “Platinum” is not one of its options (Gold, Silver)."],
                           [5, "Seats: “many” is not a number (e.g. 42 or 3.5)."]]
    assert Contact.objects.get(phone="+14155550100").name == "Keep me"
    new = Contact.objects.get(phone="+14155550102")
    assert {v.field.key: v.value for v in new.field_values.select_related("field")} == {"plan": "Gold", "seats": "4.5"}


def test_large_file_runs_in_chunks_and_a_lost_chunk_task_goes_on(admin_client, location, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 40)
    queued = []
    monkeypatch.setattr(csv_import, "enqueue", lambda func, *args: queued.append(args))
    rows = "".join(f"+1415556{i:04d},Person {i}\n" for i in range(100)) + "+14155560007,dup\n"
    imp = run_import(admin_client, django_capture_on_commit_callbacks, "phone,name\n" + rows)
    assert (imp.status, imp.rows_done, imp.created_count) == ("running", 40, 40) and queued == [(imp.pk,)]
    csv_import.import_run(imp.pk)   # the next chunk
    ContactImport.objects.filter(pk=imp.pk).update(updated_at="2000-01-01T00:00Z")
    assert csv_import.import_sweep() == 1  # its task was lost: queued again
    csv_import.import_run(imp.pk)
    imp.refresh_from_db()
    assert (imp.status, imp.created_count, imp.skipped) == ("done", 100, [[102, "the same phone as row 9"]])


def test_upload_limits_and_refusals_are_plain(admin_client, agent_client, settings):
    settings.CONTACT_IMPORT_MAX_BYTES = 1024
    response = upload(admin_client, "phone\n" + "+14155550100\n" * 200)
    assert response.status_code == 422
    assert "The file is 2 KB; the limit is 1 KB. Split it into smaller files" in response.content.decode()
    assert "This is not a CSV file" in upload(admin_client, "PK\x03\x04 xlsx").content.decode()
    assert "The file is empty" in upload(admin_client, "\n\n").content.decode()
    assert not ContactImport.objects.exists()
    assert upload(agent_client, "phone\n+14155550100\n").status_code == 403  # admins import


def test_windows_encoded_file_reads(admin_client, location, django_capture_on_commit_callbacks):
    imp = run_import(admin_client, django_capture_on_commit_callbacks, "phone,name\n+14155550100,Zoë Müller\n".encode("cp1252").decode("latin-1"))
    assert imp.status == "done"


def test_import_of_another_location_is_not_found(admin_client, outsider_client):
    upload(admin_client, "phone\n+14155550100\n")
    imp = ContactImport.objects.get()
    assert outsider_client.get(f"/contacts/import/{imp.pk}/").status_code == 404
    assert outsider_client.get(f"/contacts/import/{imp.pk}/report/").status_code == 404


# --- export ------------------------------------------------------------------------------------
def exported(client, query="") -> list[list[str]]:
    response = client.get("/contacts/export.csv" + query)
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"].startswith("attachment; filename=\"contacts-")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_export_follows_the_lists_filters_and_carries_custom_fields(admin_client, location, other_location):
    vip = Tag.objects.create(location=location, name="vip")
    plan = field_define(location=location, name="Plan", kind="choice", choices="Gold, Silver")
    ada = Contact.objects.create(location=location, phone="+14155550100", name="Ada")
    ada.tags.add(vip)
    contact_fields_set(contact=ada, values={plan.key: "Gold"})
    Contact.objects.create(location=location, phone="+14155550101", name="Bob")
    Contact.objects.create(location=other_location, phone="+14155550102", name="Elsewhere")
    rows = exported(admin_client)
    assert rows[0] == ["Name", "Phone", "Tags", "Opted out", "Owner", "Created", "Plan"]
    assert sorted(r[0] for r in rows[1:]) == ["Ada", "Bob"]
    assert [r[0] for r in exported(admin_client, f"?tag={vip.pk}")[1:]] == ["Ada"]
    assert [r[0] for r in exported(admin_client, "?q=Bob")[1:]] == ["Bob"]
    only = exported(admin_client, "?f_plan=gold")
    assert [(r[0], r[1], r[2], r[6]) for r in only[1:]] == [("Ada", "'+14155550100", "vip", "Gold")]
    page = admin_client.get("/contacts/?f_plan=Gold").content.decode()
    assert 'href="/contacts/export.csv?q=&f_plan=Gold"' in page  # the export takes the list's filters


def test_export_escapes_formulas(admin_client, location):
    Contact.objects.create(location=location, phone="+14155550100", name='=HYPERLINK("http://evil","x")')
    Contact.objects.create(location=location, phone="+14155550101", name="@SUM(1+1)")
    Contact.objects.create(location=location, phone="+14155550102", name="-2+3")
    rows = exported(admin_client)
    names = sorted(r[0] for r in rows[1:])
    assert names == ["'-2+3", "'=HYPERLINK(\"http://evil\",\"x\")", "'@SUM(1+1)"]
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert escape("\tx") == "'\tx" and escape("plain") == "plain" and escape(None) == ""


def test_agents_do_not_export(agent_client):
    assert agent_client.get("/contacts/export.csv").status_code == 403


# --- add contact -------------------------------------------------------------------------------
def test_add_contact_reads_the_locations_country_and_opens_an_existing_one(agent_client, location):
    location.country = "DE"
    location.save()
    vip = Tag.objects.create(location=location, name="vip")
    response = agent_client.post("/contacts/new/", {"phone": "0151 23456789", "name": "Jana", "tags": [vip.pk]})
    jana = Contact.objects.get(location=location)
    assert response.status_code == 302 and response["Location"] == f"/contacts/{jana.pk}/"
    assert (jana.phone, jana.name, jana.name_source) == ("+4915123456789", "Jana", "person")
    assert list(jana.tags.all()) == [vip]
    again = agent_client.post("/contacts/new/", {"phone": "+49 151 2345 6789", "name": "Other"}, follow=True)
    assert again.redirect_chain[-1][0] == f"/contacts/{jana.pk}/"
    assert "is already in your contacts as Jana: here it is." in again.content.decode()
    assert Contact.objects.count() == 1 and Contact.objects.get().name == "Jana"


def test_add_contact_errors_are_plain_and_write_nothing(agent_client, location):
    field_define(location=location, name="Birthday", kind="date")
    response = agent_client.post("/contacts/new/", {"phone": "12ab", "name": "X"})
    page = response.content.decode()
    assert response.status_code == 422
    assert "is not a phone number. Enter the number with its country code, e.g. +1 201-555-0123" in page
    assert 'value="X"' in page  # what was typed stays
    response = agent_client.post("/contacts/new/", {"phone": "+14155550100", "cf_birthday": "31/03/2025"})
    assert "Birthday: “31/03/2025” is not a date; enter it as YYYY-MM-DD" in response.content.decode()
    assert "Enter the contact&#x27;s phone number." in agent_client.post("/contacts/new/", {"phone": ""}).content.decode()
    assert not Contact.objects.exists()
