from django import forms

from accounts.models import Account
from contacts.phones import normalise_e164


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
        choices=[("sandbox", "Sandbox — simulated phone, no outside service")],
        help_text="Where the WhatsApp Web session runs.",
    )


class P2PAccountForm(_AccountForm):
    device = forms.ChoiceField(
        choices=[
            (Account.Kind.ANDROID_SMS, "Android phone (SMS)"),
            (Account.Kind.IMESSAGE, "Mac (iMessage)"),
        ]
    )
    phone_number = forms.CharField(max_length=30, help_text="The phone's own number, e.g. +14155550123.")
    backend = forms.ChoiceField(choices=[("sandbox", "Sandbox — simulated device, no outside service")])


class TwilioAccountForm(_AccountForm):
    phone_number = forms.CharField(max_length=30, help_text="Your Twilio number, e.g. +14155550123.")
    backend = forms.ChoiceField(
        choices=[("twilio", "Twilio"), ("sandbox", "Sandbox — simulated Twilio, no outside service")],
        initial="twilio",
    )
    account_sid = forms.RegexField(
        regex=r"^AC[0-9a-fA-F]{32}$", required=False, label="Account SID",
        error_messages={"invalid": "An Account SID starts with AC followed by 32 hex characters."},
    )
    auth_token = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False))
    messaging_service_sid = forms.RegexField(
        regex=r"^MG[0-9a-fA-F]{32}$", required=False, label="Messaging Service SID (optional)",
        error_messages={"invalid": "A Messaging Service SID starts with MG followed by 32 hex characters."},
    )

    def clean(self):
        data = super().clean()
        if data.get("backend") == "twilio":
            for field in ("account_sid", "auth_token"):
                if not data.get(field):
                    self.add_error(field, "Required to connect to Twilio.")
        return data
