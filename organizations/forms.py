from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm

from organizations.models import Membership


class SignUpForm(forms.Form):
    name = forms.CharField(label="Your name", max_length=150, required=False)
    email = forms.EmailField(label="Work email")
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters.",
    )
    organization_name = forms.CharField(label="Company or team name", max_length=200)

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if get_user_model().objects.filter(username=email).exists():
            raise forms.ValidationError("An account with this email already exists. Sign in instead.")
        return email

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        password_validation.validate_password(password)
        return password


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.CharField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip().lower()


class OrganizationCreateForm(forms.Form):
    name = forms.CharField(label="Organization name", max_length=200)


class OrganizationForm(forms.Form):
    name = forms.CharField(label="Organization name", max_length=200)


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(
        label="Key name",
        max_length=100,
        help_text="Where it will be used, e.g. “Production backend”.",
        widget=forms.TextInput(attrs={"placeholder": "Production backend"}),
    )


class MemberInviteForm(forms.Form):
    email = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"placeholder": "teammate@company.com"})
    )
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.AGENT)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)
