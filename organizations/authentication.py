from __future__ import annotations

import uuid

from django.apps import apps
from django.db.models import Exists, OuterRef
from rest_framework import authentication, exceptions
from rest_framework_simplejwt.exceptions import TokenError

from organizations.credentials import Credential
from organizations.models import ApiKey, Organization
from organizations.services import SECRET_PREFIX, api_key_verify_pair, api_key_verify_secret
from organizations.tokens import widget_token_decode
from widget.origins import origin_from_header

INVALID = "Invalid or revoked API credentials."


def _bearer(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    if not value or " " in value:
        raise exceptions.AuthenticationFailed("Malformed Authorization header.")
    return value


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`X-API-Key` + `X-API-Secret`, or `Authorization: Bearer sk_…`."""

    def authenticate(self, request):
        client_id = request.META.get("HTTP_X_API_KEY")
        secret = request.META.get("HTTP_X_API_SECRET")
        if client_id is not None or secret is not None:
            if not client_id or not secret:
                raise exceptions.AuthenticationFailed("X-API-Key and X-API-Secret must be sent together.")
            api_key = api_key_verify_pair(client_id=client_id.strip(), secret=secret.strip())
        else:
            token = _bearer(request)
            if token is None or not token.startswith(SECRET_PREFIX):
                return None  # maybe a widget token; the next class decides
            api_key = api_key_verify_secret(secret=token)
        if api_key is None:
            raise exceptions.AuthenticationFailed(INVALID)
        credential = Credential(organization=api_key.organization, kind="api_key", api_key=api_key)
        return credential, credential

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


def _widget_token_organization(claims: dict) -> Organization | None:
    """The token's organization, if the token is still good: its client_id key (claim `cid`)
    not revoked and its widget (claim `wid`) still there and switched on. One indexed query
    per request, so revoking a key or switching a widget off ends its tokens at once, not
    when they expire."""
    try:
        organization_id = uuid.UUID(str(claims["org"]))
        api_key_id = uuid.UUID(str(claims["cid"])) if claims.get("cid") else None
        widget_id = uuid.UUID(str(claims["wid"])) if claims.get("wid") else None
    except ValueError:  # only a correctly signed token gets here; still a 401, not a 500
        return None
    organizations = Organization.objects.filter(pk=organization_id)
    if api_key_id is not None:
        organizations = organizations.filter(
            Exists(
                ApiKey.objects.unscoped().filter(
                    pk=api_key_id, organization=OuterRef("pk"), revoked_at__isnull=True
                )
            )
        )
    if widget_id is not None:
        # By name: organizations sits below the widget app and does not import it.
        widget_model = apps.get_model("widget", "Widget")
        organizations = organizations.filter(
            Exists(
                widget_model.objects.unscoped().filter(
                    pk=widget_id, organization=OuterRef("pk"), is_active=True
                )
            )
        )
    return organizations.first()


class WidgetTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <widget JWT>` from POST /api/v1/auth/widget-token."""

    def authenticate(self, request):
        token = _bearer(request)
        if token is None:
            return None
        try:
            claims = widget_token_decode(token)
        except TokenError:
            raise exceptions.AuthenticationFailed("Invalid or expired token.") from None
        if claims.get("origin"):
            # Checked on every call, not only at mint. Browsers send Origin on cross-origin
            # calls; a same-origin GET carries only a Referer; with neither, refuse.
            origin = origin_from_header(request.META.get("HTTP_ORIGIN")) or origin_from_header(
                request.META.get("HTTP_REFERER")
            )
            if origin != claims["origin"]:
                raise exceptions.PermissionDenied("This token was issued to another origin.")
        organization = _widget_token_organization(claims)
        if organization is None:
            raise exceptions.AuthenticationFailed("Invalid or expired token.")
        credential = Credential(
            organization=organization,
            kind="widget",
            widget_id=claims.get("wid"),
            visitor_id=claims["vis"],
            claims=claims,
        )
        return credential, credential

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
