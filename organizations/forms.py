from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from organizations import services, throttles
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
        # Never "this address already has an account": whether it does is told only to the
        # address itself, by email (services.account_signup_request).
        return self.cleaned_data["email"].strip().lower()

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        password_validation.validate_password(password)
        return password


class ThrottledLoginMixin:
    """Refuses sign-in while the account or the client IP has too many recent failures (even
    with the right password: that is what a lock means), and counts each wrong password.
    The message is the same whether or not the address has an account."""

    throttled: throttles.Verdict | None = None

    def clean(self):
        email = (self.cleaned_data.get("username") or "").strip().lower()
        if not email or self.cleaned_data.get("password") is None:
            return super().clean()
        self.throttled = throttles.login_check(request=self.request, email=email)
        if self.throttled is not None:
            if self.throttled.state.policy == "login-ip":
                message = (
                    "Too many failed sign-in attempts from your network. "
                    f"Try again in {self.throttled.wait_text}."
                )
            else:
                message = (
                    "Too many failed sign-in attempts for this email address: signing in to it is "
                    f"paused for {self.throttled.wait_text}. If it has an account, we have emailed "
                    "it a link to choose a new password, which ends the pause at once "
                    "(or use “Forgot your password?”)."
                )
            raise forms.ValidationError(message, code="throttled")
        try:
            return super().clean()
        except forms.ValidationError as error:
            if getattr(error, "code", None) == "invalid_login":
                verdict, locked_now = throttles.login_failed(request=self.request, email=email)
                if locked_now:
                    services.account_lockout_notify(email=email, minutes=verdict.minutes)
            raise


class EmailAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    username = forms.CharField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    # Django's message names the user model's field ("username"); the field here is an email.
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Please enter a correct email address and password. The password is case-sensitive.",
    }

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip().lower()


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """Django admin's sign-in (when ADMIN_ENABLED), under the same throttle."""


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
    # One token per rendered form: a reload of the "key is ready" page re-posts it, and a
    # used token creates nothing (the secret is never kept anywhere to show again).
    request_token = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)


class MemberInviteForm(forms.Form):
    email = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"placeholder": "teammate@company.com"})
    )
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.AGENT)


class InvitationAccountForm(forms.Form):
    """A new address accepting an invitation: its name and password (the link proved the address)."""

    name = forms.CharField(label="Your name", max_length=150, required=False)
    password = forms.CharField(
        label="Choose a password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters.",
    )

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        password_validation.validate_password(password)
        return password


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class BusinessHoursForm(forms.Form):
    """Opening hours: a time zone, ranges per weekday ('09:00-12:00, 13:00-17:00'), holidays."""

    DAYS = [
        ("mon", "Monday"),
        ("tue", "Tuesday"),
        ("wed", "Wednesday"),
        ("thu", "Thursday"),
        ("fri", "Friday"),
        ("sat", "Saturday"),
        ("sun", "Sunday"),
    ]

    timezone = forms.CharField(max_length=64, initial="UTC", help_text="e.g. Europe/Paris, America/New_York")
    holidays = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "2026-12-25\n2027-01-01"}),
        help_text="Closed all day: one date per line.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for code, label in self.DAYS:
            self.fields[code] = forms.CharField(
                label=label,
                required=False,
                max_length=100,
                widget=forms.TextInput(attrs={"placeholder": "09:00-17:00 (empty = closed)"}),
            )

    def clean(self):
        from organizations.services import business_hours_parse

        cleaned = super().clean()
        hours = {}
        for code, _label in self.DAYS:
            try:
                hours[code] = business_hours_parse(text=cleaned.get(code, ""))
            except ValueError as error:
                self.add_error(code, str(error))
        cleaned["hours"] = hours
        cleaned["holiday_list"] = [
            line.strip() for line in (cleaned.get("holidays") or "").splitlines() if line.strip()
        ]
        return cleaned
