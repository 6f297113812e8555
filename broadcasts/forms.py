"""The composer of a broadcast. Tags and accounts offered are the location's; the time is read
in the location's time zone."""
from django import forms
from django.utils import timezone

from accounts.models import Account
from broadcasts.models import Broadcast
from contacts.models import Tag
from conversations.merge_fields import FIELDS
from conversations.scheduling import zone_for

OWN = ""
WHEN_CHOICES = [("draft", "Save as a draft"), ("now", "Send now"), ("at", "At a time"),
                ("business", "At the account's next business hours")]


class BroadcastForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="For you: the recipients never see it.")
    text = forms.CharField(
        label="Message", max_length=4000, widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Merge fields: " + ", ".join("{{" + f + "}}" for f in FIELDS) + ". A fallback after |: {{first_name|there}}.")
    tags = forms.TypedMultipleChoiceField(coerce=int, widget=forms.CheckboxSelectMultiple, label="Tags",
                                          error_messages={"required": "Choose at least one tag."})
    match = forms.ChoiceField(choices=Broadcast.Match.choices, widget=forms.RadioSelect, initial=Broadcast.Match.ANY,
                              label="Send to")
    account = forms.ChoiceField(label="Send through", required=False)
    when = forms.ChoiceField(choices=WHEN_CHOICES, widget=forms.RadioSelect, initial="draft", label="When")
    scheduled_at = forms.DateTimeField(required=False, label="Time", input_formats=["%Y-%m-%dT%H:%M"],
                                       widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))

    def __init__(self, *args, location, **kwargs):
        super().__init__(*args, **kwargs)
        self.location = location
        self.zone = zone_for(location=location)
        self.fields["tags"].choices = list(Tag.objects.filter(location=location).values_list("pk", "name"))
        accounts = Account.objects.filter(location=location, archived_at__isnull=True).order_by("name")
        self.accounts = {a.pk: a for a in accounts}
        self.fields["account"].choices = [(OWN, "Each contact's own account (its account tag, else the one it last wrote to)")] + [
            (str(a.pk), f"{a.name} ({a.get_kind_display()}{'' if a.accepts_replies else ', ' + a.get_status_display().lower()})")
            for a in accounts]
        self.fields["scheduled_at"].help_text = f"In the location's time zone ({self.zone.key})."

    @classmethod
    def initial_for(cls, broadcast: Broadcast) -> dict:
        at = broadcast.scheduled_at.astimezone(zone_for(location=broadcast.location)) if broadcast.scheduled_at else None
        when = "business" if broadcast.at_business_hours else ("at" if at else "draft")
        return {"name": broadcast.name, "text": broadcast.text, "tags": broadcast.tag_ids, "match": broadcast.match,
                "account": str(broadcast.account_id or ""), "when": when, "scheduled_at": at.replace(tzinfo=None) if at else None}

    def clean_account(self):
        value = self.cleaned_data.get("account") or OWN
        if value == OWN:
            return None
        account = self.accounts.get(int(value)) if value.isdigit() else None
        if account is None:
            raise forms.ValidationError("Choose an account of this location.")
        return account

    def clean(self):
        data = super().clean()
        at = data.get("scheduled_at")
        if data.get("when") == "at":
            if at is None:
                self.add_error("scheduled_at", "Choose the day and time.")
            else:
                data["scheduled_at"] = timezone.make_aware(at.replace(tzinfo=None), self.zone)
        else:
            data["scheduled_at"] = None
        return data

    def service_values(self) -> dict:
        data = self.cleaned_data
        return {"name": data["name"], "text": data["text"], "tag_ids": data["tags"], "match": data["match"],
                "account": data["account"], "scheduled_at": data["scheduled_at"], "at_business_hours": data["when"] == "business"}
