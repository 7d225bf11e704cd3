"""API keys as a DRF authentication class (the widget token's is `widget.authentication`)."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from organizations.credentials import Credential
from organizations.selectors import api_key_is_active
from organizations.services import SECRET_PREFIX, api_key_verify_pair, api_key_verify_secret

INVALID = "Invalid or revoked API credentials."


def bearer_token(request) -> str | None:
    """The value of `Authorization: Bearer …`, None without one; a malformed one is a 401."""
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
            token = bearer_token(request)
            if token is None or not token.startswith(SECRET_PREFIX):
                return None  # maybe a widget token; the next class decides
            api_key = api_key_verify_secret(secret=token)
        if api_key is None:
            raise exceptions.AuthenticationFailed(INVALID)
        credential = Credential(
            organization=api_key.organization,
            kind="api_key",
            api_key=api_key,
            still_valid=lambda: api_key_is_active(api_key_id=api_key.pk),
        )
        return credential, credential

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
