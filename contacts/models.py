from django.conf import settings
from django.db import models
from django.utils import timezone


class Tag(models.Model):
    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=100)
    # An account's own tag: linked by key, so renaming the account never breaks routing.
    account = models.OneToOneField(
        "accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="tag"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["location", "name"], name="uniq_tag_per_location")]

    def __str__(self):
        return self.name


class Contact(models.Model):
    class Kind(models.TextChoices):
        PERSON = "person", "Person"
        GROUP = "group", "Group chat"

    class NameSource(models.TextChoices):
        NONE = "", "None"
        PLATFORM = "platform", "From the platform"
        PERSON = "person", "Set by a person"

    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="contacts")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PERSON)
    # E.164 when the sender is a phone number; otherwise the raw sender (short code,
    # alphanumeric sender id, iMessage e-mail handle, WhatsApp group id).
    phone = models.CharField(max_length=128)
    phone_is_e164 = models.BooleanField(default=True)
    name = models.CharField(max_length=120, blank=True)
    name_source = models.CharField(max_length=10, choices=NameSource.choices, blank=True, default="")
    tags = models.ManyToManyField(Tag, through="ContactTag", related_name="contacts", blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The account the contact last wrote to: replies typed in GHL go out through it.
    active_account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opted_out = models.BooleanField(default=False)
    opted_out_at = models.DateTimeField(null=True, blank=True)
    help_requested_at = models.DateTimeField(null=True, blank=True, help_text="last time the contact sent HELP (or INFO)")
    ghl_contact_id = models.CharField(max_length=64, blank=True, db_index=True)
    # WhatsApp's hidden id of this person ('12345@lid'). A person known only by it has it as
    # their phone too, until the number becomes known and the contact merges into the phone's.
    whatsapp_lid = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["location", "phone"], name="uniq_contact_phone")]

    def __str__(self):
        return self.name or self.phone

    @property
    def display_name(self) -> str:
        return self.name or ("WhatsApp contact" if self.number_unknown else self.phone)

    NUMBER_NOT_SHARED = "Number not shared yet (WhatsApp)"

    @property
    def number_unknown(self) -> bool:
        """WhatsApp knows this person only by their LID ('123@lid', kept as the phone until the
        number is shared): pages say so instead of showing the LID as a number."""
        return not self.phone_is_e164 and (self.phone == self.whatsapp_lid or self.phone.endswith(("@lid", ".lid")))

    @property
    def phone_label(self) -> str:
        return self.NUMBER_NOT_SHARED if self.number_unknown else self.phone


class ContactTag(models.Model):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE)
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact", "tag"], name="uniq_contact_tag")]


class ContactAccount(models.Model):
    """Which accounts (and so platforms) a contact has written through."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="account_links")
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="contact_links")
    platform = models.CharField(max_length=20)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "account"], name="uniq_contact_account")
        ]


class CustomField(models.Model):
    """A field an admin defines for the location's contacts (agents fill it in). Its value is
    validated per kind; `ghl_field` names the GHL custom field (id or key) it is sent to."""

    class Kind(models.TextChoices):
        TEXT = "text", "Text"
        NUMBER = "number", "Number"
        DATE = "date", "Date"
        CHOICE = "choice", "Choice"

    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="custom_fields")
    name = models.CharField(max_length=80)
    key = models.SlugField(max_length=60, help_text="used in the API, CSV columns and filters")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TEXT)
    choices = models.JSONField(default=list, blank=True, help_text="the options of a choice field")
    ghl_field = models.CharField("GHL custom field", max_length=100, blank=True,
                                 help_text="id or key of the GHL custom field it is sent to (blank: not sent)")
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "name", "id"]
        constraints = [models.UniqueConstraint(fields=["location", "key"], name="uniq_custom_field_key")]

    def __str__(self):
        return self.name


class ContactFieldValue(models.Model):
    """One contact's value of a custom field: `value` as shown (a number's digits, a date's ISO
    form), plus the typed copy that filters compare."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="field_values")
    field = models.ForeignKey(CustomField, on_delete=models.CASCADE, related_name="values")
    value = models.CharField(max_length=500)
    number_value = models.DecimalField(max_digits=30, decimal_places=10, null=True, blank=True)
    date_value = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact", "field"], name="uniq_contact_field_value")]
        indexes = [models.Index(fields=["field", "value"]), models.Index(fields=["field", "number_value"]),
                   models.Index(fields=["field", "date_value"])]


class ContactImport(models.Model):
    """A CSV upload on its way in: stored (Django's storage) until it has run, then only its
    report is kept. Runs in chunks of rows, each its own task, so a large file never holds one
    transaction or one worker for long."""

    class Status(models.TextChoices):
        MAPPING = "mapping", "Waiting for the column mapping"
        RUNNING = "running", "Importing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="contact_imports")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    filename = models.CharField(max_length=200)
    stored_name = models.CharField(max_length=300, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    encoding = models.CharField(max_length=20, default="utf-8-sig")
    delimiter = models.CharField(max_length=1, default=",")
    headers = models.JSONField(default=list)
    mapping = models.JSONField(default=dict, blank=True, help_text="column index (as text) -> target")
    tag_ids = models.JSONField(default=list, blank=True)
    update_existing = models.BooleanField(default=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.MAPPING)
    rows_done = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    skipped = models.JSONField(default=list, blank=True, help_text="[row number, reason], the first ones")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class ContactImportPhone(models.Model):
    """A phone an import has met, and on which row: a later row with it is a duplicate within
    the file (kept across the import's chunks; deleted when the import finishes)."""

    contact_import = models.ForeignKey(ContactImport, on_delete=models.CASCADE, related_name="phones")
    phone = models.CharField(max_length=128)
    row = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact_import", "phone"], name="uniq_import_phone")]
