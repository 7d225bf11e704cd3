"""What every dashboard page of an organization shares: the current organization (from the
session), membership and role checks, and the audit helper.

The current organization lives in the session (`SESSION_ORGANIZATION_KEY`). A request is
served only when the user is a member of it; objects in URLs are always looked up through
`self.organization`, so another organization's id is a 404, the same as a missing one.
The view also sets `request.organization`, which context processors of the apps above
(e.g. the Inbox badge, `chat.context_processors`) read without this app importing them.
"""

from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import Http404
from django.shortcuts import redirect

from core.dashboard import SecurityHeadersMixin
from organizations import audit as audit_log
from organizations import selectors as organization_selectors
from organizations import services as organization_services
from organizations.models import Membership, Organization

SESSION_ORGANIZATION_KEY = "current_organization_id"


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
        request.organization = self.organization
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
            page_title=self.title,
        )
        return context

    def audit(self, action: str, *, target=None, target_type: str = "", changes: dict | None = None) -> None:
        """Record an account-changing action of the signed-in operator in the audit log."""
        audit_log.audit_request(
            request=self.request,
            organization=self.organization,
            action=action,
            target=target,
            target_type=target_type,
            changes=changes,
        )

    def scoped_get(self, queryset, **lookup):
        """One object of the current organization, or 404 (also for other orgs' ids)."""
        obj = queryset.filter(**lookup).first()
        if obj is None:
            raise Http404("Not found.")
        return obj
