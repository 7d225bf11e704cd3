"""Dashboard: sign-up and sign-in, the organization switcher and the Settings pages."""

from __future__ import annotations

import csv
import datetime
import json
import secrets
import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse, reverse_lazy
from django.views import View
from django.views.generic import FormView, TemplateView

from core.api.ratelimit import rate_limit_peek
from core.dashboard import SecurityHeadersMixin, paginate, service_errors
from organizations import audit, selectors, services, throttles
from organizations.budgets import budget_usage_list
from organizations.dashboard import OrganizationMixin, organization_switch
from organizations.forms import (
    ApiKeyCreateForm,
    BusinessHoursForm,
    EmailAuthenticationForm,
    InvitationAccountForm,
    MemberInviteForm,
    MemberRoleForm,
    OrganizationCreateForm,
    OrganizationForm,
    SignUpForm,
)
from organizations.identity import (
    identity_secret_previous_end,
    identity_secret_rotate,
    identity_secret_status,
)
from organizations.models import ApiKey, Membership

# --- Accounts -------------------------------------------------------------------------------


class SignUpView(SecurityHeadersMixin, FormView):
    """Step 1 of sign-up: always "check your inbox", whether or not the address has an account."""

    template_name = "organizations/signup.html"
    form_class = SignUpForm

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            return redirect("overview")
        response = super().dispatch(request, *args, **kwargs)
        if response.status_code != 429:
            state = throttles.ip_state(
                request=request, group="signup-ip", rate=settings.AUTH_SIGNUP_RATE_PER_IP
            )
            for header, value in state.headers().items():
                response[header] = value
        return response

    def form_valid(self, form):
        verdict = throttles.form_ip_hit(
            request=self.request, group="signup-ip", rate=settings.AUTH_SIGNUP_RATE_PER_IP
        )
        if not verdict.allowed:
            form.add_error(None, f"Too many sign-ups from your network. Try again in {verdict.wait_text}.")
            return _rate_limited(self.form_invalid(form), verdict)
        data = form.cleaned_data
        if throttles.address_mail_hit(request=self.request, group="signup-mail", email=data["email"]):
            services.account_signup_request(
                email=data["email"],
                password=data["password"],
                name=data["name"],
                organization_name=data["organization_name"],
            )
        return redirect("signup-sent")


def mail_delivery_hint() -> str:
    """Where this server's email went when it sends none: `make run` on a fresh machine
    uses Django's console backend, and its "Check your inbox" sent a new user to an inbox
    nothing would ever reach (found on a new-user walk: the link was in the terminal, among
    the access log). Empty in production and with a real mail backend."""
    if settings.PRODUCTION:
        return ""
    backend = settings.EMAIL_BACKEND.rsplit(".", 2)[-2] if settings.EMAIL_BACKEND.count(".") >= 2 else ""
    if backend == "console":
        return (
            "This server sends no real email yet: it printed the message in the terminal "
            "where SupportAI runs (make run). Set EMAIL_BACKEND and the SMTP settings to send mail."
        )
    if backend == "filebased":
        return (
            f"This server sends no real email yet: it wrote the message to a file in "
            f"{settings.EMAIL_FILE_PATH}. Set EMAIL_BACKEND and the SMTP settings to send mail."
        )
    return ""


class MailHintMixin:
    def get_context_data(self, **kwargs):
        return super().get_context_data(**kwargs) | {"mail_hint": mail_delivery_hint()}


class SignUpSentView(SecurityHeadersMixin, MailHintMixin, TemplateView):
    template_name = "organizations/signup_sent.html"


class SignUpVerifyView(SecurityHeadersMixin, TemplateView):
    """Step 2: the emailed link. GET only shows a button (mail scanners fetch links); the POST
    activates the account, creates the organization and signs in."""

    template_name = "organizations/signup_verify.html"

    def get(self, request, token):
        pending = services.account_signup_pending(token=token)
        context = self.get_context_data(valid=pending is not None, email=pending[0].email if pending else "")
        return self.render_to_response(context, status=200 if pending else 400)

    def post(self, request, token):
        confirmed = services.account_signup_confirm(token=token)
        if confirmed is None:
            return self.render_to_response(self.get_context_data(valid=False), status=400)
        user, organization = confirmed
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        organization_switch(request=request, organization=organization)
        messages.success(request, f"Welcome to SupportAI! {organization.name} is ready.")
        return redirect("overview")


def _rate_limited(response, verdict: throttles.Verdict):
    """A form page answered 429 with the bucket's headers and Retry-After."""
    response.status_code = 429
    for header, value in verdict.state.headers().items():
        response[header] = value
    response["Retry-After"] = str(verdict.retry_after)
    return response


class RateLimitHeadersPageMixin:
    """The client IP's bucket for this form, in the rate-limit headers of every answer."""

    rate_limit_group = ""
    rate_limit_setting = ""

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        if response.status_code != 429:
            state = throttles.ip_state(
                request=request,
                group=self.rate_limit_group,
                rate=getattr(settings, self.rate_limit_setting),
            )
            for header, value in state.headers().items():
                response[header] = value
        return response


class LoginView(RateLimitHeadersPageMixin, SecurityHeadersMixin, auth_views.LoginView):
    template_name = "registration/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True
    rate_limit_group = "login-ip"
    rate_limit_setting = "AUTH_LOGIN_RATE_PER_IP"

    def form_valid(self, form):
        response = super().form_valid(form)
        user = form.get_user()
        audit.audit_record_for_user(
            user=user, action="auth.signed_in", actor=audit.actor_from_request(self.request, user=user)
        )
        return response

    def form_invalid(self, form):
        response = super().form_invalid(form)
        email = (form.data.get("username") or "").strip()
        user = selectors.user_get_by_email(email=email) if email else None
        if user is not None:  # an unknown address belongs to no organization's log
            audit.audit_record_for_user(
                user=user,
                action="auth.sign_in_failed",
                actor=audit.actor_from_request(self.request, user=user.email),
                changes={"throttled": form.throttled is not None},
            )
        if form.throttled is not None:
            return _rate_limited(response, form.throttled)
        return response


class LogoutView(SecurityHeadersMixin, auth_views.LogoutView):
    pass


class PasswordResetView(RateLimitHeadersPageMixin, SecurityHeadersMixin, auth_views.PasswordResetView):
    template_name = "registration/password_reset_form.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("password-reset-done")
    rate_limit_group = "reset-ip"
    rate_limit_setting = "AUTH_RESET_RATE_PER_IP"

    def form_valid(self, form):
        verdict = throttles.form_ip_hit(
            request=self.request, group="reset-ip", rate=settings.AUTH_RESET_RATE_PER_IP
        )
        if not verdict.allowed:
            form.add_error(
                None,
                f"Too many password reset requests from your network. Try again in {verdict.wait_text}.",
            )
            return _rate_limited(self.form_invalid(form), verdict)
        email = form.cleaned_data["email"].strip().lower()
        if not throttles.address_mail_hit(request=self.request, group="reset-mail", email=email):
            # This address has had its share of reset emails: the page answers as if one was
            # sent (the same answer whether or not the address has an account).
            return redirect(self.get_success_url())
        return super().form_valid(form)

    @property
    def extra_email_context(self):
        # The link's host is SITE_URL, never the request's Host header (which anyone can set).
        return {"site_url": settings.SITE_URL}


class PasswordResetDoneView(SecurityHeadersMixin, MailHintMixin, auth_views.PasswordResetDoneView):
    template_name = "registration/password_reset_done.html"


class PasswordResetConfirmView(SecurityHeadersMixin, auth_views.PasswordResetConfirmView):
    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("password-reset-complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        audit.audit_record_for_user(
            user=form.user,
            action="auth.password_reset",
            actor=audit.actor_from_request(self.request, user=form.user),
        )
        return response


class PasswordResetCompleteView(SecurityHeadersMixin, auth_views.PasswordResetCompleteView):
    template_name = "registration/password_reset_complete.html"


# --- Invitations -----------------------------------------------------------------------------


class InvitationView(SecurityHeadersMixin, TemplateView):
    """The emailed invitation link: the invitee accepts or declines; nothing changes before.

    Someone with an account must be signed in as the invited address to accept; a new address
    chooses its password here (the link proved it owns the address). The token is the only
    credential for declining, which changes nothing for the invitee."""

    template_name = "organizations/invitation.html"

    def _render(self, invitation, *, status: int = 200, form=None):
        user = self.request.user
        existing = get_user_model().objects.filter(username=invitation.email).first()
        has_account = existing is not None and services.account_is_established(user=existing)
        context = self.get_context_data(
            invitation=invitation,
            signed_in_as_invitee=user.is_authenticated and user.username.lower() == invitation.email,
            signed_in_as_other=user.is_authenticated and user.username.lower() != invitation.email,
            has_account=has_account,
            form=form or (None if has_account else InvitationAccountForm()),
        )
        return self.render_to_response(context, status=status)

    def get(self, request, token):
        invitation = services.invitation_get_open(token=token)
        if invitation is None:
            return self.render_to_response(self.get_context_data(invitation=None), status=400)
        return self._render(invitation)

    def post(self, request, token):
        invitation = services.invitation_get_open(token=token)
        if invitation is None:
            return self.render_to_response(self.get_context_data(invitation=None), status=400)
        action = request.POST.get("action")
        if action == "decline":
            services.invitation_decline(invitation=invitation)
            messages.info(request, f"You declined the invitation to {invitation.organization.name}.")
            return redirect("overview" if request.user.is_authenticated else "login")
        if action == "create" and not request.user.is_authenticated:
            form = InvitationAccountForm(request.POST)
            if not form.is_valid():
                return self._render(invitation, status=200, form=form)
            with service_errors(request=request) as failure:
                user = services.invitation_accept_new_account(
                    invitation=invitation,
                    password=form.cleaned_data["password"],
                    name=form.cleaned_data["name"],
                )
            if failure:
                return self._render(invitation, status=409)
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        elif action == "accept" and request.user.is_authenticated:
            with service_errors(request=request) as failure:
                services.invitation_accept(invitation=invitation, user=request.user)
            if failure:
                return self._render(invitation, status=403)
        else:
            return self._render(invitation, status=400)
        organization_switch(request=request, organization=invitation.organization)
        messages.success(request, f"You joined {invitation.organization.name}.")
        return redirect("overview")


# --- Organizations ----------------------------------------------------------------------------


class OrganizationCreateView(SecurityHeadersMixin, LoginRequiredMixin, FormView):
    """A second (or, for invited users who left every org, a first) organization."""

    template_name = "organizations/organization_create.html"
    form_class = OrganizationCreateForm

    def form_valid(self, form):
        organization = services.organization_create(name=form.cleaned_data["name"], owner=self.request.user)
        organization_switch(request=self.request, organization=organization)
        messages.success(self.request, f"{organization.name} created. You are its owner.")
        return redirect("overview")


class OrganizationSwitchView(SecurityHeadersMixin, LoginRequiredMixin, View):
    def post(self, request):
        wanted = request.POST.get("organization", "")
        if not _is_uuid(wanted):
            raise Http404("Not found.")
        membership = get_object_or_404(
            selectors.membership_list_for_user(user=request.user), organization_id=wanted
        )
        organization_switch(request=request, organization=membership.organization)
        messages.info(request, f"Switched to {membership.organization.name}.")
        return redirect("overview")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# --- Settings > Organization ---------------------------------------------------------------


class OrganizationSettingsView(OrganizationMixin, FormView):
    template_name = "organizations/settings_organization.html"
    form_class = OrganizationForm
    nav = "settings"
    title = "Organization"

    def get_initial(self):
        return {"name": self.organization.name}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        usage = rate_limit_peek(
            request=self.request,
            group="org",
            key=str(self.organization.pk),
            limit=self.organization.rate_limit_per_hour,
            window=3600,
        )
        used = usage.limit - usage.remaining
        context.update(
            llm_budget=selectors.llm_budget_status(organization=self.organization),
            usage=usage,
            used=used,
            used_percent=min(100, round(100 * used / usage.limit)) if usage.limit else 0,
            reset_minutes=max(1, round(usage.reset / 60)),
            settings_tab="organization",
        )
        return context

    def form_valid(self, form):
        if not self.membership.can_manage:
            messages.error(self.request, "Only owners and admins can rename the organization.")
            return redirect("settings-organization")
        old_name = self.organization.name
        services.organization_update(organization=self.organization, name=form.cleaned_data["name"])
        self.audit(
            "settings.updated", target=self.organization, changes={"name": [old_name, self.organization.name]}
        )
        messages.success(self.request, "Organization name saved.")
        return redirect("settings-organization")


# --- Settings > Usage ------------------------------------------------------------------------


class UsageSettingsView(OrganizationMixin, TemplateView):
    """Every budget of the organization with its use in the current window."""

    template_name = "organizations/settings_usage.html"
    nav = "settings"
    title = "Usage"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            budgets=budget_usage_list(organization=self.organization),
            llm_budget=selectors.llm_budget_status(organization=self.organization),
            settings_tab="usage",
        )
        return context


# --- Settings > API Keys ---------------------------------------------------------------------


class ApiKeyListView(OrganizationMixin, FormView):
    """Lists keys; a valid POST creates one and shows its secret in that response only."""

    template_name = "organizations/settings_api_keys.html"
    form_class = ApiKeyCreateForm
    manage_required = True
    nav = "settings"
    title = "API keys"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            page_obj=paginate(self.request, selectors.api_key_list(organization=self.organization)),
            settings_tab="api-keys",
            request_token=secrets.token_urlsafe(16),
        )
        return context

    USED_TOKENS = "api_key_requests_done"

    def form_valid(self, form):
        token = form.cleaned_data.get("request_token") or ""
        used = self.request.session.get(self.USED_TOKENS, [])
        if token and token in used:  # a reload re-posted the form: nothing new is created
            messages.warning(
                self.request,
                "That key was already created; its secret was shown once. If you did not copy it, "
                "revoke the key and generate a new one.",
            )
            return redirect(reverse("settings-api-keys"))
        if token:
            self.request.session[self.USED_TOKENS] = (used + [token])[-20:]
        api_key, secret = services.api_key_create(
            organization=self.organization, name=form.cleaned_data["name"], created_by=self.request.user
        )
        self.audit(
            "api_key.created", target=api_key, changes={"name": api_key.name, "client_id": api_key.client_id}
        )
        context = self.get_context_data(form=ApiKeyCreateForm(), new_key=api_key, new_secret=secret)
        response = self.render_to_response(context)
        # The only page the secret ever appears on: never cache it, never replay it.
        response["Cache-Control"] = "no-store"
        return response


class ApiKeyRevokeView(OrganizationMixin, TemplateView):
    template_name = "organizations/api_key_revoke.html"
    manage_required = True
    nav = "settings"
    title = "Revoke API key"

    def get_api_key(self) -> ApiKey:
        return self.scoped_get(selectors.api_key_list(organization=self.organization), pk=self.kwargs["pk"])

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(api_key=self.get_api_key(), settings_tab="api-keys")
        return context

    def post(self, request, pk):
        api_key = services.api_key_revoke(api_key=self.get_api_key())
        self.audit("api_key.revoked", target=api_key, changes={"name": api_key.name})
        messages.success(request, f"“{api_key.name}” is revoked. Requests with it are now rejected.")
        return redirect("settings-api-keys")


# --- Settings > Audit log ----------------------------------------------------------------------


def _day(value: str):
    try:
        return datetime.date.fromisoformat(value) if value else None
    except ValueError:
        return None


class AuditLogView(OrganizationMixin, TemplateView):
    """The organization's audit log: filter by actor, action and date; `?format=csv` exports
    what the filters select (owners and admins; nothing here changes an event)."""

    template_name = "organizations/settings_audit_log.html"
    manage_required = True
    nav = "settings"
    title = "Audit log"
    CSV_LIMIT = 50_000

    def date_errors(self) -> dict[str, str]:
        """A date filter that is not a date (the form's date inputs send ISO dates; a URL edited
        by hand may not): named, so the page says so instead of listing, or exporting, the
        whole log as if it had been applied."""
        labels = {"date_from": "From", "date_to": "To"}
        return {
            name: f"{label}: enter a date as YYYY-MM-DD."
            for name, label in labels.items()
            if self.request.GET.get(name, "") and _day(self.request.GET[name]) is None
        }

    def events(self):
        params = self.request.GET
        if self.date_errors():
            return audit.audit_event_list(organization=self.organization).none()
        date_from, date_to = _day(params.get("date_from", "")), _day(params.get("date_to", ""))
        return audit.audit_event_list(
            organization=self.organization,
            action=params.get("action", "").strip()[:64] or None,
            actor=params.get("actor", "").strip()[:255] or None,
            since=datetime.datetime.combine(date_from, datetime.time.min, tzinfo=datetime.UTC)
            if date_from
            else None,
            until=datetime.datetime.combine(
                date_to + datetime.timedelta(days=1), datetime.time.min, tzinfo=datetime.UTC
            )
            if date_to
            else None,
        )

    def get(self, request, *args, **kwargs):
        if request.GET.get("format") == "csv":
            if errors := self.date_errors():
                return HttpResponseBadRequest(
                    f"The audit log filters are not valid ({' '.join(errors.values())})",
                    content_type="text/plain; charset=utf-8",
                )
            response = HttpResponse(content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
            writer = csv.writer(response)
            writer.writerow(
                ["time", "action", "actor", "ip", "user_agent", "target_type", "target_id", "changes"]
            )
            for event in self.events()[: self.CSV_LIMIT].iterator():
                writer.writerow(
                    [
                        event.created_at.isoformat(),
                        event.action,
                        _csv_safe(event.actor),
                        event.ip or "",
                        _csv_safe(event.user_agent),
                        event.target_type,
                        event.target_id,
                        _csv_safe(json.dumps(event.changes, ensure_ascii=False)),
                    ]
                )
            return response
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        filters = {key: self.request.GET.get(key, "") for key in ("actor", "action", "date_from", "date_to")}
        context.update(
            page_obj=paginate(self.request, self.events()),
            filters=filters,
            filter_errors=list(self.date_errors().values()),
            csv_query=urlencode({**{k: v for k, v in filters.items() if v}, "format": "csv"}),
            settings_tab="audit-log",
        )
        return context


def _csv_safe(value: str) -> str:
    # A cell starting with = + - @ is a formula to spreadsheet programs (CSV injection).
    return "'" + value if value[:1] in {"=", "+", "-", "@"} else value


# --- Settings > Security ------------------------------------------------------------------------


class SecuritySettingsView(OrganizationMixin, TemplateView):
    """The identity secret for verified visitors: its state, and a POST that creates or
    rotates it and shows the new secret in that response only."""

    template_name = "organizations/settings_security.html"
    manage_required = True
    nav = "settings"
    title = "Security"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            identity=identity_secret_status(organization=self.organization),
            grace_hours=int(settings.IDENTITY_SECRET_GRACE_PERIOD.total_seconds() // 3600),
            settings_tab="security",
        )
        return context

    def post(self, request):
        if request.POST.get("action") == "end-previous":
            ended = identity_secret_previous_end(organization=self.organization)
            self.audit(
                "identity_secret.previous_ended", target_type="identitysecret", changes={"ended": ended}
            )
            messages.success(request, "The previous secret is no longer accepted.")
            return redirect("settings-security")
        row, secret = identity_secret_rotate(organization=self.organization, created_by=request.user)
        self.audit("identity_secret.rotated", target=row, changes={"hint": row.hint})
        response = self.render_to_response(self.get_context_data(new_secret=secret))
        # The only page the secret ever appears on: never cache it, never replay it.
        response["Cache-Control"] = "no-store"
        return response


# --- Settings > Members ------------------------------------------------------------------------


class MemberListView(OrganizationMixin, FormView):
    template_name = "organizations/settings_members.html"
    form_class = MemberInviteForm
    manage_required = True
    nav = "settings"
    title = "Members"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            page_obj=paginate(self.request, selectors.membership_list(organization=self.organization)),
            invitations=selectors.invitation_list_open(organization=self.organization)[:50],
            roles=Membership.Role.choices,
            settings_tab="members",
        )
        return context

    def form_valid(self, form):
        with service_errors(form, field="email") as failure:
            invitation = services.member_invite(
                organization=self.organization,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=self.request.user,
                base_url=settings.SITE_URL,
            )
        if failure:
            return self.form_invalid(form)
        self.audit(
            "member.invited", target=invitation, changes={"email": invitation.email, "role": invitation.role}
        )
        messages.success(
            self.request,
            f"Invitation sent to {invitation.email}. They join once they accept it. {mail_delivery_hint()}".strip(),
        )
        return redirect("settings-members")


class MemberMixin(OrganizationMixin):
    manage_required = True
    nav = "settings"

    def get_member(self) -> Membership:
        return self.scoped_get(
            selectors.membership_list(organization=self.organization), pk=self.kwargs["pk"]
        )

    def _owner_only_guard(self, member: Membership, new_role: str | None = None) -> str | None:
        """Admins manage agents and admins; only an owner can touch owners or make one."""
        if self.membership.role == Membership.Role.OWNER:
            return None
        if member.role == Membership.Role.OWNER or new_role == Membership.Role.OWNER:
            return "Only an owner can change or remove owners."
        return None

    def member_credentials(self, member: Membership) -> dict:
        """What the confirmation page lists: the active keys the member made (the one widgets
        embed marked) and the open invitations they sent."""
        widget_key = selectors.api_key_widget_facing(organization=self.organization)
        return {
            "member_keys": list(
                selectors.api_key_list_made_by(organization=self.organization, user=member.user_id)
            ),
            "widget_key_id": widget_key.pk if widget_key else None,
            "member_invitations": list(
                selectors.invitation_list_sent_by(organization=self.organization, user=member.user_id)
            ),
        }

    def kept_key_ids(self) -> list[uuid.UUID] | None:
        """The keys the admin ticked to keep (`keep`); None if one is not even an id."""
        kept = []
        for value in self.request.POST.getlist("keep"):
            try:
                kept.append(uuid.UUID(value))
            except ValueError:
                return None
        return kept

    def audit_credentials_ended(self, member: Membership, ended: services.MemberCredentialsEnded, why: str):
        for api_key in ended.revoked_keys:
            self.audit(
                "api_key.revoked",
                target=api_key,
                changes={"name": api_key.name, "reason": why, "created_by": member.user.email},
            )

    def credentials_message(self, ended: services.MemberCredentialsEnded) -> str:
        parts = []
        if ended.revoked_keys:
            parts.append(f"{len(ended.revoked_keys)} API key(s) they made revoked")
        if ended.kept_keys:
            parts.append(f"{len(ended.kept_keys)} kept working")
        if ended.withdrawn_invitations:
            parts.append(f"{len(ended.withdrawn_invitations)} invitation(s) they sent withdrawn")
        return f" ({'; '.join(parts)})." if parts else ""


class MemberRoleView(MemberMixin, TemplateView):
    """A new role. A demotion to agent of someone who made API keys or sent invitations first
    asks which keys to keep (`member_role_confirm.html`), as a removal does."""

    template_name = "organizations/member_role_confirm.html"
    title = "Change role"
    http_method_names = ["post"]  # the question is only ever the answer to a POST

    def post(self, request, pk):
        member = self.get_member()
        form = MemberRoleForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose a valid role.")
            return redirect("settings-members")
        role = form.cleaned_data["role"]
        if role == member.role:  # the spare Save: say so rather than announce a change
            messages.info(
                request,
                f"{member.user.email} is already {member.get_role_display().lower()}; nothing changed.",
            )
            return redirect("settings-members")
        refusal = self._owner_only_guard(member, role)
        if refusal:
            messages.error(request, refusal)
            return redirect("settings-members")
        demotion = services.member_may_manage(member.role) and not services.member_may_manage(role)
        if demotion and request.POST.get("confirm") != "1":
            credentials = self.member_credentials(member)
            if credentials["member_keys"] or credentials["member_invitations"]:
                context = self.get_context_data(
                    member=member, role=role, role_label=dict(Membership.Role.choices)[role], **credentials
                )
                return self.render_to_response(context | {"settings_tab": "members"})
        kept = self.kept_key_ids()
        if kept is None:
            messages.error(request, "Choose the keys to keep from the list.")
            return redirect("settings-members")
        old_role = member.role
        with service_errors(request=request) as failure:
            _member, ended = services.membership_role_change(
                membership=member, role=role, keep_api_key_ids=kept
            )
        if not failure:
            self.audit_credentials_ended(member, ended, "member_demoted")
            self.audit(
                "member.role_changed",
                target=member,
                changes={"email": member.user.email, "role": [old_role, member.role], **ended.summary()},
            )
            messages.success(
                request,
                f"{member.user.email} is now {member.get_role_display().lower()}"
                f"{self.credentials_message(ended) or '.'}",
            )
        return redirect("settings-members")


class MemberRemoveView(MemberMixin, TemplateView):
    """Asks first, listing the API keys the member made (each revoked unless ticked to keep)
    and the invitations they sent (withdrawn)."""

    template_name = "organizations/member_remove.html"
    title = "Remove member"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        member = self.get_member()
        context.update(member=member, settings_tab="members", **self.member_credentials(member))
        return context

    def post(self, request, pk):
        member = self.get_member()
        refusal = self._owner_only_guard(member)
        if refusal:
            messages.error(request, refusal)
            return redirect("settings-members")
        kept = self.kept_key_ids()
        if kept is None:
            messages.error(request, "Choose the keys to keep from the list.")
            return redirect("settings-member-remove", pk=member.pk)
        with service_errors(request=request) as failure:
            ended = services.membership_remove(membership=member, keep_api_key_ids=kept)
        if failure:
            return redirect("settings-members")
        self.audit_credentials_ended(member, ended, "member_removed")
        self.audit(
            "member.removed",
            target=member,
            changes={"email": member.user.email, "role": member.role, **ended.summary()},
        )
        messages.success(
            request,
            f"{member.user.email} no longer has access to {self.organization.name}"
            f"{self.credentials_message(ended) or '.'}",
        )
        if member.user_id == request.user.pk:
            return redirect(reverse("overview"))
        return redirect("settings-members")


class BusinessHoursSettingsView(OrganizationMixin, FormView):
    """When the team answers; outside these hours a handoff asks for the visitor's email.
    Owners and admins only (agents get 403)."""

    template_name = "organizations/settings_business_hours.html"
    form_class = BusinessHoursForm
    nav = "settings"
    title = "Business hours"
    manage_required = True

    def get_initial(self):
        organization = self.organization
        initial = {
            "timezone": organization.business_timezone,
            "holidays": "\n".join(organization.business_holidays or []),
        }
        for code, _label in BusinessHoursForm.DAYS:
            initial[code] = ", ".join(
                f"{start}-{end}" for start, end in (organization.business_hours or {}).get(code, [])
            )
        return initial

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            settings_tab="business-hours",
            status=selectors.business_hours_status(organization=self.organization),
        )
        return context

    def form_valid(self, form):
        organization = self.organization
        before = {
            name: getattr(organization, name)
            for name in ("business_timezone", "business_hours", "business_holidays")
        }
        with service_errors(form) as failure:
            services.business_hours_set(
                organization=self.organization,
                timezone_name=form.cleaned_data["timezone"].strip(),
                hours=form.cleaned_data["hours"],
                holidays=form.cleaned_data["holiday_list"],
            )
        if failure:
            return self.form_invalid(form)
        organization.refresh_from_db(fields=list(before))
        changes = {
            name: [old, getattr(organization, name)]
            for name, old in before.items()
            if getattr(organization, name) != old
        }
        if changes:
            self.audit("settings.updated", target=organization, changes=changes)
        messages.success(self.request, "Business hours saved.")
        return redirect(reverse("settings-business-hours"))
