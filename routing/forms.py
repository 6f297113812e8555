from django import forms

from accounts.models import Account
from contacts.models import Tag
from routing.models import RoutingRule, Team


class RoutingRuleForm(forms.ModelForm):
    class Meta:
        model = RoutingRule
        fields = ["name", "position", "enabled", "tags", "tag_mode", "account", "platform", "hours", "target", "target_user", "target_team"]
        widgets = {"tags": forms.CheckboxSelectMultiple}

    def __init__(self, *args, location, **kwargs):
        super().__init__(*args, **kwargs)
        from django.contrib.auth import get_user_model

        self.instance.location = location
        self.fields["tags"].queryset = Tag.objects.filter(location=location)
        self.fields["account"].queryset = Account.objects.filter(location=location, archived_at__isnull=True)
        self.fields["target_user"].queryset = get_user_model().objects.filter(memberships__location=location)
        self.fields["target_team"].queryset = Team.objects.filter(location=location)
        self.fields["platform"] = forms.ChoiceField(choices=[("", "any platform"), *Account.Kind.choices], required=False)


class TeamForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name", "strategy", "sticky", "members"]
        widgets = {"members": forms.CheckboxSelectMultiple}

    def __init__(self, *args, location, **kwargs):
        super().__init__(*args, **kwargs)
        from django.contrib.auth import get_user_model

        self.instance.location = location
        self.fields["members"].queryset = get_user_model().objects.filter(memberships__location=location)

    def validate_unique(self):
        super().validate_unique()
        qs = Team.objects.filter(location=self.instance.location, name=self.cleaned_data.get("name")).exclude(pk=self.instance.pk)
        if qs.exists():
            self.add_error("name", "A team with this name exists already.")


class DryRunForm(forms.Form):
    phone = forms.CharField(label="Sender phone")
    account = forms.ModelChoiceField(queryset=Account.objects.none())

    def __init__(self, *args, location, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].queryset = Account.objects.filter(location=location, archived_at__isnull=True)
