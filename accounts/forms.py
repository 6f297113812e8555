from django import forms
from django.conf import settings

from accounts.models import Account
from whatsnap.phones import normalise_e164


class _AccountForm(forms.Form):
    name = forms.CharField(
        max_length=60,
        help_text="What the account is for, e.g. 'sales'. Its tag will be whatsnap-account-<name>.",
    )

    def clean_phone_number(self):
        raw = self.cleaned_data.get("phone_number", "")
        if not raw:
            return ""
        try:
            return normalise_e164(raw)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class WhatsAppAccountForm(_AccountForm):
    backend = forms.ChoiceField(
        choices=[
            ("evolution", "WhatsApp Web gateway (Evolution API)"),
            ("waha", "WhatsApp Web gateway (WAHA)"),
            ("sandbox", "Sandbox — simulated phone, no outside service"),
        ],
        help_text="Where the WhatsApp Web session runs.",
    )
    # backend -> the setting that configures its gateway
    _GATEWAY_SETTING = {"evolution": "EVOLUTION_API_BASE_URL", "waha": "WAHA_API_BASE_URL"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A real gateway is the default once one is configured (Evolution first).
        configured = [b for b, setting in self._GATEWAY_SETTING.items() if getattr(settings, setting, "")]
        self.fields["backend"].initial = configured[0] if configured else "sandbox"

    def clean_backend(self):
        backend = self.cleaned_data["backend"]
        setting = self._GATEWAY_SETTING.get(backend)
        if setting and not getattr(settings, setting, ""):
            raise forms.ValidationError(f"No WhatsApp gateway is configured for this choice ({setting}); ask your administrator.")
        return backend


class P2PAccountForm(_AccountForm):
    device = forms.ChoiceField(
        choices=[
            (Account.Kind.ANDROID_SMS, "Android phone (SMS)"),
            (Account.Kind.IMESSAGE, "Mac (iMessage)"),
        ]
    )
    phone_number = forms.CharField(max_length=30, help_text="The phone's own number, e.g. +14155550123.")
    backend = forms.ChoiceField(
        choices=[
            ("device", "My device — BlueBubbles Server on the Mac / SMS Gateway app on the Android phone"),
            ("sandbox", "Sandbox — simulated device, no outside service"),
        ],
        initial="device",
    )
    # Mac (iMessage): BlueBubbles Server
    bluebubbles_url = forms.URLField(
        required=False, label="BlueBubbles server URL", help_text="As shown in BlueBubbles Server, e.g. https://mac.example.com:1234"
    )
    bluebubbles_password = forms.CharField(required=False, label="BlueBubbles server password", widget=forms.PasswordInput)
    # Android phone: SMS Gateway for Android
    gateway_mode = forms.ChoiceField(
        required=False,
        label="SMS Gateway mode",
        choices=[("local", "Local server (the phone's own address)"), ("cloud", "Cloud server (api.sms-gate.app)")],
        initial="local",
    )
    gateway_address = forms.CharField(
        required=False, max_length=200, label="Phone address (local mode)",
        help_text="The phone's address as the WhatSnap server reaches it, e.g. http://phone.example.com:8080. "
                  "A local-network address (192.168.…) works only when the server is on that network and its operator "
                  "allows it; otherwise use cloud mode."
    )
    gateway_username = forms.CharField(required=False, max_length=100, label="SMS Gateway username")
    gateway_password = forms.CharField(required=False, label="SMS Gateway password", widget=forms.PasswordInput)
    gateway_signing_key = forms.CharField(
        required=False,
        label="Webhook signing key",
        widget=forms.PasswordInput,
        help_text="In the app: Settings → Webhooks → Signing Key.",
    )

    _DEVICE_BACKEND = {Account.Kind.IMESSAGE: "bluebubbles", Account.Kind.ANDROID_SMS: "android_sms"}
    _REQUIRED = {
        "bluebubbles": ("bluebubbles_url", "bluebubbles_password"),
        "android_sms": ("gateway_username", "gateway_password", "gateway_signing_key"),
    }
    # a backend's setting -> the field it was typed in
    _ADDRESS_FIELD = {"server_url": "bluebubbles_url", "device_url": "gateway_address"}

    def clean(self):
        data = super().clean()
        if data.get("backend") != "device" or not data.get("device"):
            return data
        data["backend"] = backend = self._DEVICE_BACKEND[data["device"]]
        required = self._REQUIRED[backend]
        if backend == "android_sms" and data.get("gateway_mode", "local") != "cloud":
            required += ("gateway_address",)
        for field in required:
            if not data.get(field):
                self.add_error(field, "Required to connect to your device.")
        if not self.errors:
            self._check_addresses(backend)
        return data

    def _check_addresses(self, backend: str) -> None:
        """The device's address is called by the server: a private one only when the operator
        allows it (GATEWAY_ALLOW_PRIVATE_URLS), said here rather than at the first call."""
        from accounts.providers import get_provider

        credentials, config = self.backend_settings()
        for setting, problem in get_provider(backend).address_problems(credentials=credentials, config=config).items():
            self.add_error(self._ADDRESS_FIELD.get(setting), problem)

    def backend_settings(self) -> tuple[dict, dict]:
        """(credentials, config) of the chosen backend; secrets go to credentials."""
        data = self.cleaned_data
        if data["backend"] == "bluebubbles":
            return {"server_url": data["bluebubbles_url"], "password": data["bluebubbles_password"]}, {}
        if data["backend"] == "android_sms":
            mode = data.get("gateway_mode") or "local"
            config = {"mode": mode, **({"device_url": data["gateway_address"]} if mode == "local" else {})}
            credentials = {
                "username": data["gateway_username"],
                "password": data["gateway_password"],
                "signing_key": data["gateway_signing_key"],
            }
            return credentials, config
        return {}, {}


class TwilioAccountForm(_AccountForm):
    phone_number = forms.CharField(
        max_length=30, required=False,
        help_text="Your Twilio number, e.g. +14155550123. Empty: the account's only number (with a Messaging Service: "
                  "its first pool number).",
    )
    backend = forms.ChoiceField(
        choices=[("twilio", "Twilio"), ("sandbox", "Sandbox — simulated Twilio, no outside service")],
        initial="twilio",
    )
    account_sid = forms.RegexField(
        regex=r"^AC[0-9a-fA-F]{32}$", required=False, label="Account SID",
        error_messages={"invalid": "An Account SID starts with AC followed by 32 hex characters."},
    )
    auth_token = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False),
        help_text="Twilio signs its webhooks with it, so it is needed even with an API key.",
    )
    api_key_sid = forms.RegexField(
        regex=r"^SK[0-9a-fA-F]{32}$", required=False, label="API Key SID (optional)",
        help_text="Use an API key instead of the Auth Token for Twilio's REST API.",
        error_messages={"invalid": "An API Key SID starts with SK followed by 32 hex characters."},
    )
    api_key_secret = forms.CharField(required=False, label="API Key secret", widget=forms.PasswordInput(render_value=False))
    messaging_service_sid = forms.RegexField(
        regex=r"^MG[0-9a-fA-F]{32}$", required=False, label="Messaging Service SID (optional)",
        error_messages={"invalid": "A Messaging Service SID starts with MG followed by 32 hex characters."},
    )

    def clean(self):
        from accounts.providers import get_provider
        from accounts.providers.base import ProviderError

        data = super().clean()
        if data.get("backend") != "twilio":
            if not data.get("phone_number") and not self.has_error("phone_number"):
                self.add_error("phone_number", "Required for a simulated Twilio number.")
            return data
        for field in ("account_sid", "auth_token"):
            if not data.get(field):
                self.add_error(field, "Required to connect to Twilio.")
        if bool(data.get("api_key_sid")) != bool(data.get("api_key_secret")):
            self.add_error("api_key_secret" if data.get("api_key_sid") else "api_key_sid", "Give both the API Key SID and its secret.")
        if self.errors:
            return data
        credentials, config = self.backend_settings()
        try:  # checked against Twilio before anything is saved
            setup = get_provider("twilio").verify(credentials=credentials, config=config, phone=data.get("phone_number", ""))
        except ProviderError as exc:
            raise forms.ValidationError(str(exc)) from None
        data["phone_number"] = setup.phone
        return data

    def backend_settings(self) -> tuple[dict, dict]:
        """(credentials, config); secrets go to credentials."""
        data = self.cleaned_data
        if data.get("backend") != "twilio":
            return {}, {}
        credentials = {"account_sid": data["account_sid"], "auth_token": data["auth_token"]}
        if data.get("api_key_sid"):
            credentials.update(api_key_sid=data["api_key_sid"], api_key_secret=data["api_key_secret"])
        config = {"messaging_service_sid": data["messaging_service_sid"]} if data.get("messaging_service_sid") else {}
        return credentials, config


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
                  "send_per_minute", "send_jitter_seconds", "typing_delay_seconds"]
        labels = {"name": "Display name"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from django.contrib.auth import get_user_model

        from routing.models import Team

        location = self.instance.location
        self.fields["default_assignee"].queryset = get_user_model().objects.filter(memberships__location=location)
        self.fields["default_team"].queryset = Team.objects.filter(location=location)
        hours = self.instance.business_hours or {}
        self.fields["hours_text"].initial = "\n".join(
            f"{day} " + " ".join(f"{a}-{b}" for a, b in spans) for day, spans in hours.items()
        )
        if self.instance.kind != Account.Kind.WHATSAPP:
            del self.fields["typing_delay_seconds"]

    def clean_send_per_minute(self):
        value = self.cleaned_data["send_per_minute"]
        if not 1 <= value <= 600:
            raise forms.ValidationError("Between 1 and 600 messages a minute.")
        return value

    def clean_hours_text(self):
        from accounts.hours import parse_hours

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
