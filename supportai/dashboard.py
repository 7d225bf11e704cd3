"""What every dashboard page shares: the current organization, role checks, pagination and
the security headers.

The current organization lives in the session (`SESSION_ORGANIZATION_KEY`). A request is
served only when the user is a member of it; objects in URLs are always looked up through
`self.organization`, so another organization's id is a 404, the same as a missing one.
"""

from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import F
from django.http import Http404
from django.shortcuts import redirect

from organizations import audit as audit_log
from organizations import selectors as organization_selectors
from organizations import services as organization_services
from organizations.models import Membership, Organization

SESSION_ORGANIZATION_KEY = "current_organization_id"
PAGE_SIZE = 20

# Dashboard pages load scripts only from our own origin (no inline script, no eval), so a
# visitor-supplied string that slipped past escaping still could not run.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "frame-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)


def security_headers_apply(response):
    response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.setdefault("X-Frame-Options", "DENY")
    return response


class SecurityHeadersMixin:
    def dispatch(self, request, *args, **kwargs):
        return security_headers_apply(super().dispatch(request, *args, **kwargs))


def organization_switch(*, request, organization: Organization) -> None:
    request.session[SESSION_ORGANIZATION_KEY] = str(organization.pk)
    organization_services.membership_select(organization=organization, user=request.user)


def membership_current(request) -> Membership | None:
    """The user's membership in the session's organization, else in the organization they last
    chose (this session or an earlier one), else in their alphabetically first."""
    memberships = organization_selectors.membership_list_for_user(user=request.user)
    wanted = request.session.get(SESSION_ORGANIZATION_KEY)
    if wanted:
        membership = memberships.filter(organization_id=wanted).first()
        if membership is not None:
            return membership
    membership = memberships.order_by(
        F("last_selected_at").desc(nulls_last=True), "organization__name", "organization_id"
    ).first()
    if membership is not None:
        request.session[SESSION_ORGANIZATION_KEY] = str(membership.organization_id)
    return membership


class OrganizationMixin(SecurityHeadersMixin, LoginRequiredMixin):
    """A dashboard page of the current organization.

    `manage_required = True` limits the page to owners and admins (agents get 403).
    """

    manage_required = False
    nav = ""
    title = ""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.membership = membership_current(request)
        if self.membership is None:
            return redirect("organization-create")
        self.organization = self.membership.organization
        if self.manage_required and not self.membership.can_manage:
            raise PermissionDenied("Only owners and admins can open this page.")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs) if hasattr(super(), "get_context_data") else kwargs
        context.update(
            organization=self.organization,
            membership=self.membership,
            can_manage=self.membership.can_manage,
            memberships=organization_selectors.membership_list_for_user(user=self.request.user).order_by(
                "organization__name"
            ),
            nav=self.nav,
            nav_waiting=_conversations_waiting(organization=self.organization),
            page_title=self.title,
        )
        return context

    def audit(self, action: str, *, target=None, target_type: str = "", changes: dict | None = None) -> None:
        """Record an account-changing action of the signed-in operator in the audit log."""
        audit_log.audit_record(
            organization=self.organization,
            action=action,
            actor=audit_log.actor_from_request(self.request),
            target_type=target_type or (target._meta.model_name if target is not None else ""),
            target_id=getattr(target, "pk", "") or "",
            changes=changes,
        )

    def scoped_get(self, queryset, **lookup):
        """One object of the current organization, or 404 (also for other orgs' ids)."""
        obj = queryset.filter(**lookup).first()
        if obj is None:
            raise Http404("Not found.")
        return obj


def _conversations_waiting(*, organization) -> int:
    """Conversations waiting for a person (the Inbox badge; the page keeps it current)."""
    from chat import selectors as chat_selectors

    return chat_selectors.waiting_count(organization=organization)


def paginate(request, items, *, per_page: int = PAGE_SIZE):
    """A page of `items` for `?page=` (out-of-range pages clamp to the last one)."""
    paginator = Paginator(items, per_page)
    return paginator.get_page(request.GET.get("page"))


def querystring_without_page(request) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def form_error_apply(form, error) -> None:
    """Show a service's ValidationFailed on the form: per field where it names one."""
    data = error.details if isinstance(error.details, dict) else {}
    placed = False
    for field, messages in data.items():
        if field in form.fields:
            for message in messages if isinstance(messages, list) else [messages]:
                form.add_error(field, str(message))
            placed = True
    if not placed:
        form.add_error(None, error.message)


def lines(value: str) -> list[str]:
    """A textarea with one entry per line → the entries (blank lines dropped)."""
    return [line.strip() for line in (value or "").splitlines() if line.strip()]
