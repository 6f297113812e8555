from django import forms
from django.contrib.auth import get_user_model

from accounts.hours import parse_hours
from accounts.models import Account
from accounts.providers import get_provider, real_backends, simulated_backend
from accounts.providers.base import ProviderError
from whatsnap.phones import normalise_e164


class _AccountForm(forms.Form):
    """One card of the Add Account page: the account's name, where it runs (`backend`) and the
    fields its real backends ask for, which each provider declares (Provider.form_fields)."""

    kinds: tuple[str, ...] = ()  # the Account.Kind values the card adds
    simulated_label = ""  # how the backend choice offers the simulated backend

    name = forms.CharField(
        max_length=60,
        help_text="What the account is for, e.g. 'sales'. Its tag will be whatsnap-account-<name>.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["backend"].choices = [*self.real_choices(), (simulated_backend(self.kinds[0]), self.simulated_label)]
        for key in real_backends(*self.kinds):
            self.fields.update(get_provider(key).form_fields())

    def real_choices(self) -> list[tuple[str, str]]:
        return [(key, get_provider(key).choice_label) for key in real_backends(*self.kinds)]

    @property
    def lists_numbers(self) -> bool:
        """Can the form offer the account's numbers to pick from ("Load my numbers")?"""
        return self.number_lister() is not None

    @classmethod
    def number_lister(cls):
        return next((get_provider(key) for key in real_backends(*cls.kinds) if get_provider(key).lists_numbers), None)

    def clean_phone_number(self):
        raw = self.cleaned_data.get("phone_number", "")
        if not raw:
            return ""
        try:
            return normalise_e164(raw)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        data = super().clean()
        if data.get("backend") in real_backends(*self.kinds):
            self.check_with_backend(data, data["backend"])
        return data

    def check_with_backend(self, data: dict, backend: str) -> None:
        """What the real backend needs: its fields filled in, the addresses it would call
        allowed, and credentials and number accepted by the backend itself (before saving)."""
        provider = get_provider(backend)
        for field, problem in provider.form_problems(data).items():
            self.add_error(field, problem)
        if self.errors:
            return
        credentials, config = provider.form_settings(data)
        # the device's address is called by the server: a private one only when the operator
        # allows it (GATEWAY_ALLOW_PRIVATE_URLS), said here rather than at the first call
        for setting, problem in provider.address_problems(credentials=credentials, config=config).items():
            self.add_error(provider.form_field_of_setting.get(setting), problem)
        if self.errors:
            return
        try:
            data["phone_number"] = provider.verify(credentials=credentials, config=config, phone=data.get("phone_number", ""))
        except ProviderError as exc:
            raise forms.ValidationError(str(exc)) from None

    def kind(self) -> str:
        return self.kinds[0]

    def backend_settings(self) -> tuple[dict, dict]:
        """(credentials, config) of the chosen backend; secrets go to credentials."""
        return get_provider(self.cleaned_data["backend"]).form_settings(self.cleaned_data)


class WhatsAppAccountForm(_AccountForm):
    kinds = (Account.Kind.WHATSAPP,)
    simulated_label = "Sandbox — simulated phone, no outside service"
    backend = forms.ChoiceField(help_text="Where the WhatsApp Web session runs.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A real gateway is the default once one is configured (in registry order).
        ready = [key for key, _label in self.real_choices() if not get_provider(key).missing_settings()]
        self.fields["backend"].initial = ready[0] if ready else simulated_backend(self.kinds[0])

    def clean_backend(self):
        backend = self.cleaned_data["backend"]
        missing = get_provider(backend).missing_settings()
        if missing:
            raise forms.ValidationError(f"No WhatsApp gateway is configured for this choice ({missing[0]}); ask your administrator.")
        return backend


class P2PAccountForm(_AccountForm):
    """A person's own phone or Mac: one real backend per device, chosen by the device."""

    kinds = (Account.Kind.ANDROID_SMS, Account.Kind.IMESSAGE)
    simulated_label = "Sandbox — simulated device, no outside service"
    device = forms.ChoiceField(
        choices=[
            (Account.Kind.ANDROID_SMS, "Android phone (SMS)"),
            (Account.Kind.IMESSAGE, "Mac (iMessage)"),
        ]
    )
    phone_number = forms.CharField(max_length=30, help_text="The phone's own number, e.g. +14155550123.")
    backend = forms.ChoiceField(initial="device")

    def real_choices(self) -> list[tuple[str, str]]:
        return [("device", "My device — BlueBubbles Server on the Mac / SMS Gateway app on the Android phone")]

    def clean(self):
        data = super().clean()
        if data.get("backend") == "device" and data.get("device"):
            data["backend"] = real_backends(data["device"])[0]
            self.check_with_backend(data, data["backend"])
        return data

    def kind(self) -> str:
        return self.cleaned_data["device"]


class TwilioAccountForm(_AccountForm):
    kinds = (Account.Kind.TWILIO,)
    simulated_label = "Sandbox — simulated Twilio, no outside service"
    phone_number = forms.CharField(
        max_length=30, required=False,
        help_text="Your Twilio number, e.g. +14155550123. Empty: the account's only number (with a Messaging Service: "
                  "its first pool number).",
    )
    backend = forms.ChoiceField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["backend"].initial = real_backends(*self.kinds)[0]

    def clean(self):
        data = super().clean()  # a real backend: checked against Twilio before anything is saved
        if data.get("backend") not in real_backends(*self.kinds):
            if not data.get("phone_number") and not self.has_error("phone_number"):
                self.add_error("phone_number", "Required for a simulated Twilio number.")
        return data


class AccountSettingsForm(forms.ModelForm):
    """Per-account settings. Business hours are typed one day per line: `mon 09:00-17:00`
    (several spans: `mon 09:00-12:00 13:00-17:00`); an empty box means always open."""

    hours_text = forms.CharField(
        label="Business hours", required=False, widget=forms.Textarea(attrs={"rows": 7}),
        help_text="One day per line, e.g. 'mon 09:00-17:00'. Empty = always open. In the account's time zone.",
    )

    class Meta:
        model = Account
        fields = ["name", "timezone", "signature", "default_assignee", "default_team", "auto_reply_text",
                  "send_per_minute", "send_jitter_seconds", "typing_delay_seconds",
                  "send_read_receipts", "history_days", "quiet_alert_minutes", "broadcast_daily_cap", "broadcast_warmup"]
        labels = {"name": "Display name", "send_read_receipts": "Send read receipts",
                  "broadcast_daily_cap": "Broadcast messages a day", "broadcast_warmup": "Warm up a new number",
                  "history_days": "History to import (days)", "quiet_alert_minutes": "Alert after silence (minutes)"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        location = self.instance.location
        self.fields["default_assignee"].queryset = get_user_model().objects.filter(memberships__location=location)
        self.fields["default_team"].queryset = self.fields["default_team"].queryset.filter(location=location)
        hours = self.instance.business_hours or {}
        self.fields["hours_text"].initial = "\n".join(
            f"{day} " + " ".join(f"{a}-{b}" for a, b in spans) for day, spans in hours.items()
        )
        if self.instance.kind != Account.Kind.WHATSAPP:
            del self.fields["typing_delay_seconds"]
        # offered only where the account's backend can do it
        provider = get_provider(self.instance.backend)
        if not provider.supports_read_receipts:
            del self.fields["send_read_receipts"]
        if not provider.supports_history:
            del self.fields["history_days"]
        for name in ("history_days", "quiet_alert_minutes", "broadcast_daily_cap"):  # left out of a post: unchanged
            if name in self.fields:
                self.fields[name].required = False

    def clean_history_days(self):
        value = self.cleaned_data["history_days"]
        if value is None:
            return self.instance.history_days
        if not 0 <= value <= 90:
            raise forms.ValidationError("Between 0 (import nothing) and 90 days.")
        return value

    def clean_quiet_alert_minutes(self):
        value = self.cleaned_data["quiet_alert_minutes"]
        if value is None:
            return self.instance.quiet_alert_minutes
        if not (value == 0 or 5 <= value <= 7 * 24 * 60):
            raise forms.ValidationError("0 (never), or between 5 minutes and a week (10080 minutes).")
        return value

    def clean_broadcast_daily_cap(self):
        value = self.cleaned_data["broadcast_daily_cap"]
        return self.instance.broadcast_daily_cap if value is None else value

    def clean_send_per_minute(self):
        value = self.cleaned_data["send_per_minute"]
        if not 1 <= value <= 600:
            raise forms.ValidationError("Between 1 and 600 messages a minute.")
        return value

    def clean_hours_text(self):
        hours = {}
        for line in (self.cleaned_data.get("hours_text") or "").splitlines():
            parts = line.split()
            if not parts:
                continue
            day, spans = parts[0].lower()[:3], []
            for span in parts[1:]:
                if "-" not in span:
                    raise forms.ValidationError(f"'{span}' is not a span like 09:00-17:00.")
                spans.append(span.split("-", 1))
            hours.setdefault(day, []).extend(spans)
        try:
            parse_hours(hours)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return hours
