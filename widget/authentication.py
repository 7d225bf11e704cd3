"""The widget token as a DRF authentication class: `Authorization: Bearer <widget JWT>`.

The token comes from `POST /api/v1/auth/widget-token` (`widget.tokens`); it is checked on
every call against the Origin it was minted for, its client_id key and its widget.
"""

from __future__ import annotations

import time
import uuid

from django.conf import settings
from django.db.models import Exists, OuterRef
from rest_framework import authentication, exceptions
from rest_framework_simplejwt.exceptions import TokenError

from chat.selectors import token_erased_exists
from organizations.authentication import bearer_token
from organizations.credentials import Credential
from organizations.models import ApiKey, Organization
from widget.models import Widget
from widget.origins import origin_allowed, origin_from_header
from widget.services import IdentityRequired
from widget.tokens import widget_token_decode


class VerificationNowRequired(IdentityRequired):
    default_message = (
        "This widget now only serves verified visitors and this token carries no identity proof: "
        "mint a new one with user_id + user_hash or user_token signed with the organization's "
        "identity secret."
    )


def _token_holder(claims: dict) -> tuple[Organization, Widget | None, bool] | None:
    """The token's organization and widget, if the token is still good: its client_id key
    (claim `cid`) not revoked, its widget (claim `wid`) still there and switched on, and its
    visitor (or verified customer) not erased by a privacy erase since it was issued. One
    indexed query per request, so revoking a key, switching a widget off or erasing the
    visitor ends its tokens at once, not when they expire. The third value: whether the
    widget requires verified visitors now (for a token without a widget, whether any active
    widget of the organization does, as at mint)."""
    try:
        organization_id = uuid.UUID(str(claims["org"]))
        api_key_id = uuid.UUID(str(claims["cid"])) if claims.get("cid") else None
        widget_id = uuid.UUID(str(claims["wid"])) if claims.get("wid") else None
    except ValueError:  # only a correctly signed token gets here; still a 401, not a 500
        return None

    def key_live(organization_ref: str):
        return Exists(
            ApiKey.objects.unscoped().filter(
                pk=api_key_id, organization=OuterRef(organization_ref), revoked_at__isnull=True
            )
        )

    if widget_id is not None:
        widgets = (
            Widget.objects.unscoped()
            .select_related("organization")
            .filter(pk=widget_id, organization_id=organization_id, is_active=True)
            .exclude(token_erased_exists(claims=claims, organization_ref="organization"))
        )
        if api_key_id is not None:
            widgets = widgets.filter(key_live("organization"))
        widget = widgets.first()
        return (widget.organization, widget, widget.require_verified_visitors) if widget is not None else None
    organizations = (
        Organization.objects.filter(pk=organization_id)
        .exclude(token_erased_exists(claims=claims, organization_ref="pk"))
        .annotate(
            verification_required=Exists(
                Widget.objects.unscoped().filter(
                    organization=OuterRef("pk"), is_active=True, require_verified_visitors=True
                )
            )
        )
    )
    if api_key_id is not None:
        organizations = organizations.filter(key_live("pk"))
    organization = organizations.first()
    return (organization, None, organization.verification_required) if organization is not None else None


def _anonymous_where_verification_required(claims: dict, holder: tuple) -> bool:
    """Whether this token carries no identity proof (claim `uid`) while its widget now requires
    one: switching "Require verified visitors" on ends the anonymous tokens already issued, as
    switching the widget off does. The dashboard's own preview (claim `preview`, minted only for
    a signed-in member) keeps working, as at mint."""
    return holder[2] and not claims.get("uid") and not claims.get("preview")


def _token_still_good(claims: dict, *, origin: str | None) -> bool:
    """For an open live stream's re-check: not expired, still held, still allowed anonymous, and
    the site that opened it (`origin`) still among the widget's allowed domains: whatever ends
    the token's requests ends its streams too."""
    if time.time() >= claims["exp"]:
        return False
    holder = _token_holder(claims)
    return (
        holder is not None
        and not _anonymous_where_verification_required(claims, holder)
        and _site_allowed(holder[1], origin=origin)
    )


def _site_allowed(widget: Widget | None, *, origin: str | None) -> bool:
    """Whether the page calling (`origin`) is among the widget's allowed domains as they are now
    (our own origin always: the dashboard's preview, the hosted frame): a site taken off the list
    loses its tokens at once, as a switched-off widget does, not when they expire."""
    if widget is None or not widget.allowed_domains:
        return True
    allowed = [*widget.allowed_domains, origin_from_header(settings.SITE_URL)]
    return origin_allowed(origin=origin, allowed_domains=[value for value in allowed if value])


class WidgetTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <widget JWT>` from POST /api/v1/auth/widget-token."""

    def authenticate(self, request):
        token = bearer_token(request)
        if token is None:
            return None
        try:
            claims = widget_token_decode(token)
        except TokenError:
            raise exceptions.AuthenticationFailed("Invalid or expired token.") from None
        # Browsers send Origin on cross-origin calls; a same-origin GET carries only a Referer.
        origin = origin_from_header(request.META.get("HTTP_ORIGIN")) or origin_from_header(
            request.META.get("HTTP_REFERER")
        )
        if claims.get("origin") and origin != claims["origin"]:
            # Checked on every call, not only at mint; with neither header, refused.
            raise exceptions.PermissionDenied("This token was issued to another origin.")
        holder = _token_holder(claims)
        if holder is None:
            raise exceptions.AuthenticationFailed("Invalid or expired token.")
        if _anonymous_where_verification_required(claims, holder):
            raise VerificationNowRequired()
        organization, widget, _ = holder
        if not _site_allowed(widget, origin=origin):
            raise exceptions.PermissionDenied("This site is not among the widget's allowed domains.")
        credential = Credential(
            organization=organization,
            kind="widget",
            widget_id=claims.get("wid"),
            widget=widget,
            visitor_id=claims["vis"],
            claims=claims,
            still_valid=lambda: _token_still_good(claims, origin=origin),
        )
        return credential, credential

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
