"""Contacts from a CSV file: upload (stored through Django's storage, never held in memory),
column mapping with a preview of the first rows, then the rows in chunks, each chunk one task
and one transaction (a worker that dies redoes its chunk, nothing half-written). Every phone is
read in the location's country; a phone that has a contact already is that contact (updated, or
skipped when asked), a phone met earlier in the file is skipped as a duplicate; each skipped row
is reported with its reason."""
import codecs
import csv
import io
import re
import time
import uuid

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from contacts.adding import phone_read
from contacts.fields import clean_value, fields_of, write_values
from contacts.models import Contact, ContactImport, ContactImportPhone, ContactTag, Tag
from contacts.services import contact_update, contact_upsert_from_inbound
from whatsnap import events
from whatsnap.errors import ApplicationError
from whatsnap.phones import NormalisedSender
from whatsnap.tasks import enqueue, enqueue_on_commit

CHUNK_ROWS = 500
CHUNK_SECONDS = 20  # well inside the task timeout
SKIPPED_KEPT = 1000
SAMPLE_BYTES = 64 * 1024
TARGETS = [("", "Ignore"), ("phone", "Phone"), ("name", "Name"), ("first_name", "First name"), ("last_name", "Last name"),
           ("tags", "Tags (separated by , or ;)")]
GUESSES = {"phone": r"phone|mobile|cell|number|whatsapp|tel|msisdn", "first_name": r"first.?name|given|vorname|prénom",
           "last_name": r"last.?name|surname|family|nachname", "name": r"^(full.?)?name$|contact.?name|display", "tags": r"tags?|labels?"}


def max_bytes() -> int:
    return settings.CONTACT_IMPORT_MAX_BYTES


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{max(1, n // 1024)} KB"


def _sniff(sample: bytes) -> tuple[str, str]:
    """(encoding, delimiter) of the file's start."""
    if b"\x00" in sample or sample.startswith(b"PK\x03\x04"):
        raise ApplicationError("This is not a CSV file (it looks like a spreadsheet or another binary file). "
                               "Save it as CSV (comma separated) and upload that.", field="file")
    encoding = "utf-8-sig"
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(sample, final=False)
    except UnicodeDecodeError:
        encoding, text = "cp1252", sample.decode("cp1252", errors="replace")
    first_line = text.splitlines()[0] if text.strip() else ""
    delimiter = max(",;\t|", key=first_line.count) if first_line else ","
    return encoding, delimiter if first_line.count(delimiter) else ","


def import_start(*, location, user, upload) -> ContactImport:
    """Check and store the uploaded file; its header row becomes the columns to map."""
    if upload is None:
        raise ApplicationError("Choose a CSV file to upload.", field="file")
    if upload.size > max_bytes():
        raise ApplicationError(f"The file is {_size(upload.size)}; the limit is {_size(max_bytes())}. "
                               "Split it into smaller files and import them one after the other.", field="file", code="too_large")
    upload.seek(0)
    encoding, delimiter = _sniff(upload.read(SAMPLE_BYTES))
    upload.seek(0)
    reader = csv.reader(io.TextIOWrapper(upload, encoding=encoding, errors="replace", newline=""), delimiter=delimiter)
    try:
        headers = next((row for row in reader if any(cell.strip() for cell in row)), None)
    except csv.Error as exc:
        raise ApplicationError(f"The file could not be read as CSV ({exc}).", field="file") from None
    if not headers:
        raise ApplicationError("The file is empty: it needs a header row and one row per contact.", field="file")
    if len(headers) > 200:
        raise ApplicationError("The file has more than 200 columns; is it a CSV of contacts?", field="file")
    upload.seek(0)
    stored = default_storage.save(f"contact-imports/{location.pk}/{uuid.uuid4().hex}.csv", upload)
    return ContactImport.objects.create(
        location=location, created_by=user, filename=(upload.name or "contacts.csv")[:200], stored_name=stored, size=upload.size,
        encoding=encoding, delimiter=delimiter, headers=[h.strip()[:100] for h in headers])


def targets_for(location) -> list[tuple[str, str]]:
    return TARGETS + [(f"field:{f.key}", f"{f.name} (custom field)") for f in fields_of(location)]


def guess_mapping(contact_import: ContactImport) -> dict[str, str]:
    """Column index -> target, from the header names (each target once)."""
    fields = fields_of(contact_import.location_id)
    mapping, used = {}, set()
    for index, header in enumerate(contact_import.headers):
        label = header.strip().lower()
        guess = next((f"field:{f.key}" for f in fields if label in (f.key.lower(), f.name.lower())), "")
        if not guess:
            guess = next((target for target, pattern in GUESSES.items() if re.search(pattern, label)), "")
        if guess and guess not in used:
            mapping[str(index)] = guess
            used.add(guess)
    return mapping


def _rows(contact_import: ContactImport):
    """The data rows (after the header), read from storage as a stream."""
    with default_storage.open(contact_import.stored_name, "rb") as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding=contact_import.encoding, errors="replace", newline=""),
                            delimiter=contact_import.delimiter)
        header_seen = False
        for row in reader:
            if not header_seen:
                header_seen = any(cell.strip() for cell in row)
                continue
            yield row


def preview(contact_import: ContactImport, count: int = 5) -> list[list[str]]:
    out = []
    try:
        for row in _rows(contact_import):
            if any(cell.strip() for cell in row):
                out.append([cell[:80] for cell in row] + [""] * (len(contact_import.headers) - len(row)))
            if len(out) >= count:
                break
    except csv.Error:
        pass  # shown as the import's error when it runs
    return out


def import_configure(*, contact_import: ContactImport, mapping: dict, tag_ids, update_existing: bool) -> ContactImport:
    """Check the mapping (one phone column; each target once) and start the import."""
    valid = {t for t, _ in targets_for(contact_import.location)} - {""}
    chosen = {str(i): t for i, t in mapping.items() if t and t in valid and str(i).isdigit()
              and int(i) < len(contact_import.headers)}
    targets = list(chosen.values())
    if "phone" not in targets:
        raise ApplicationError("Choose the column that holds the phone number.", field="mapping")
    doubled = sorted({t for t in targets if targets.count(t) > 1})
    if doubled:
        names = dict(targets_for(contact_import.location))
        raise ApplicationError(f"Each kind of value comes from one column: {', '.join(names[t] for t in doubled)} is chosen twice.",
                               field="mapping")
    tags = list(Tag.objects.filter(location_id=contact_import.location_id, pk__in=list(tag_ids)).values_list("pk", flat=True))
    with transaction.atomic():
        updated = ContactImport.objects.filter(pk=contact_import.pk, status=ContactImport.Status.MAPPING).update(
            mapping=chosen, tag_ids=tags, update_existing=update_existing, status=ContactImport.Status.RUNNING)
        if not updated:
            raise ApplicationError("This import has started already.")
        enqueue_on_commit(import_run, contact_import.pk)
    contact_import.refresh_from_db()
    return contact_import


def import_run(import_id: int) -> None:
    """One chunk of rows; queues the next while rows remain (task entry point)."""
    more = _run_chunk(import_id)
    if more:
        enqueue(import_run, import_id)


def import_sweep() -> int:
    """An import whose chunk task was lost (broker down, worker killed) goes on."""
    stale = timezone.now() - timezone.timedelta(minutes=2)
    ids = list(ContactImport.objects.filter(status=ContactImport.Status.RUNNING, updated_at__lt=stale).values_list("pk", flat=True))
    for pk in ids:
        enqueue(import_run, pk)
    return len(ids)


def _run_chunk(import_id: int) -> bool:
    started = time.monotonic()
    with transaction.atomic():
        contact_import = ContactImport.objects.select_for_update(skip_locked=True).filter(
            pk=import_id, status=ContactImport.Status.RUNNING).select_related("location").first()
        if contact_import is None:
            return False  # done, or another worker has it
        run = _Run(contact_import)
        done, finished = 0, True
        try:
            for index, row in enumerate(_rows(contact_import)):
                if index < contact_import.rows_done:
                    continue
                if done >= CHUNK_ROWS or time.monotonic() - started > CHUNK_SECONDS:
                    finished = False
                    break
                run.row(index + 2, row)  # the row as numbered in a spreadsheet (1 is the header)
                done += 1
        except (csv.Error, OSError) as exc:
            contact_import.status, contact_import.error = ContactImport.Status.FAILED, \
                f"Row {contact_import.rows_done + done + 2} could not be read ({exc}); the rows before it are imported."
        run.save(done)
        if finished or contact_import.status == ContactImport.Status.FAILED:
            _finish(contact_import)
    return not finished and contact_import.status == ContactImport.Status.RUNNING


def _finish(contact_import: ContactImport) -> None:
    if contact_import.status == ContactImport.Status.RUNNING:
        contact_import.status = ContactImport.Status.DONE
    contact_import.finished_at = timezone.now()
    contact_import.save(update_fields=["status", "error", "finished_at", "updated_at"])
    ContactImportPhone.objects.filter(contact_import=contact_import).delete()
    name = contact_import.stored_name
    transaction.on_commit(lambda: default_storage.delete(name))


def import_discard(contact_import: ContactImport) -> None:
    """A mapping abandoned: the stored file goes with it."""
    if contact_import.stored_name and contact_import.status == ContactImport.Status.MAPPING:
        default_storage.delete(contact_import.stored_name)
        contact_import.delete()


class _Run:
    """The rows of one chunk, against what earlier chunks saw."""

    def __init__(self, contact_import: ContactImport):
        self.imp = contact_import
        self.location = contact_import.location
        self.columns = {target: int(index) for index, target in contact_import.mapping.items()}
        self.fields = {f"field:{f.key}": f for f in fields_of(self.location)}
        self.tags = {t.name.lower(): t for t in Tag.objects.filter(location=self.location)}
        self.fixed_tags = [pk for pk in contact_import.tag_ids if pk in {t.pk for t in self.tags.values()}]
        self.seen: dict[str, int] = {}
        self.new_phones: list[ContactImportPhone] = []

    def cell(self, row, target) -> str:
        index = self.columns.get(target)
        return row[index].strip() if index is not None and index < len(row) else ""

    def skip(self, number: int, reason: str) -> None:
        self.imp.skipped_count += 1
        if len(self.imp.skipped) < SKIPPED_KEPT:
            self.imp.skipped.append([number, reason])

    def row(self, number: int, row: list[str]) -> None:
        if not any(cell.strip() for cell in row):
            return  # blank line
        raw_phone = _unescape(self.cell(row, "phone"))
        if not raw_phone:
            return self.skip(number, "no phone number")
        try:
            phone = phone_read(self.location, raw_phone)
        except ApplicationError:
            return self.skip(number, f"“{raw_phone[:40]}” is not a phone number")
        first = self.seen.get(phone) or ContactImportPhone.objects.filter(contact_import=self.imp, phone=phone).values_list("row", flat=True).first()
        if first:
            return self.skip(number, f"the same phone as row {first}")
        cleaned = {}
        for target, field in self.fields.items():
            if target in self.columns:
                try:
                    cleaned[field] = clean_value(field, _unescape(self.cell(row, target)))
                except ApplicationError as exc:
                    return self.skip(number, exc.message)
        self.seen[phone] = number
        self.new_phones.append(ContactImportPhone(contact_import=self.imp, phone=phone, row=number))
        name = _unescape(self.cell(row, "name")) or " ".join(
            p for p in (_unescape(self.cell(row, "first_name")), _unescape(self.cell(row, "last_name"))) if p)
        tag_ids = self.fixed_tags + self.tag_ids_of(_unescape(self.cell(row, "tags")))
        self.apply(number, phone, name[:120], tag_ids, {f: v for f, v in cleaned.items() if v[0]})

    def apply(self, number, phone, name, tag_ids, cleaned) -> None:
        contact = Contact.objects.filter(location=self.location, phone=phone).first()
        if contact is not None and not self.imp.update_existing:
            return self.skip(number, "a contact with this phone exists already (not updated)")
        created = contact is None
        if created:
            contact, _, _ = contact_upsert_from_inbound(location=self.location, sender=NormalisedSender(phone, True), platform_name="")
            self.imp.created_count += 1
        else:
            self.imp.updated_count += 1
        current = set(ContactTag.objects.filter(contact=contact).values_list("tag_id", flat=True))
        changed = write_values(contact, cleaned)
        if (name and name != contact.name) or set(tag_ids) - current or created:
            contact_update(contact=contact, name=name or contact.name, tag_ids=list(current | set(tag_ids)))
        elif changed:
            events.record("contact.updated", location_id=self.location.pk, contact=contact)

    def tag_ids_of(self, text: str) -> list[int]:
        ids = []
        for name in re.split(r"[,;|]", text or ""):
            name = name.strip()[:100]
            if not name:
                continue
            tag = self.tags.get(name.lower())
            if tag is None and not name.startswith("whatsnap-account-"):
                tag, _ = Tag.objects.get_or_create(location=self.location, name=name)
                self.tags[name.lower()] = tag
            if tag is not None:
                ids.append(tag.pk)
        return ids

    def save(self, done: int) -> None:
        ContactImportPhone.objects.bulk_create(self.new_phones, ignore_conflicts=True)
        self.imp.rows_done += done
        self.imp.save(update_fields=["rows_done", "created_count", "updated_count", "skipped_count", "skipped", "status", "error", "updated_at"])


def _unescape(cell: str) -> str:
    """A cell our export escaped against spreadsheet formulas ("'+1415…") reads as it was."""
    return cell[1:] if len(cell) > 1 and cell[0] == "'" and cell[1] in "=+-@\t\r" else cell
