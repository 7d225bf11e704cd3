"""Widget tokens: short-lived JWTs (simplejwt) that carry organization, widget and visitor.

Decoding pins the algorithm (HS256), and requires audience, issuer, `exp` and `iat`; a
token whose lifetime exceeds the configured policy is refused even if correctly signed.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import jwt
from django.conf import settings
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import Token


class WidgetToken(Token):
    token_type = "widget"

    @property
    def lifetime(self) -> timedelta:  # read at use, never at import
        return settings.WIDGET_TOKEN_LIFETIME

    def verify(self) -> None:
        super().verify()
        for claim in ("iat", "exp", "aud", "iss", "org", "vis"):
            if claim not in self.payload:
                raise TokenError(f"Token has no '{claim}' claim")
        issued, expires = self.payload["iat"], self.payload["exp"]
        if expires - issued > settings.WIDGET_TOKEN_LIFETIME.total_seconds() + 1:
            raise TokenError("Token lifetime exceeds policy")


def widget_token_issue(
    *,
    organization_id,
    widget_id=None,
    visitor_id: str | None = None,
    origin: str | None = None,
    api_key_id=None,
    verified_user_id: str | None = None,
    claimed_user_id: str | None = None,
) -> tuple[str, int]:
    """`api_key_id`: the key whose public client_id the token was minted for (claim `cid`);
    revoking that key ends the token on its next request, as deactivating its widget does.
    `verified_user_id` (claim `uid`): the customer the organization's server proved this
    visitor to be; `claimed_user_id` (claim `cuid`): a user id the page claimed without
    proof, kept only as unverified metadata on the sessions it creates."""
    token = WidgetToken()
    token["org"] = str(organization_id)
    if api_key_id is not None:
        token["cid"] = str(api_key_id)
    token["vis"] = visitor_id or f"v_{uuid.uuid4().hex}"
    token["sub"] = token["vis"]
    if widget_id is not None:
        token["wid"] = str(widget_id)
    if origin:
        token["origin"] = origin
    if verified_user_id is not None:
        token["uid"] = verified_user_id
    elif claimed_user_id:
        token["cuid"] = claimed_user_id
    token.set_iat()
    return str(token), int(settings.WIDGET_TOKEN_LIFETIME.total_seconds())


def widget_token_previous_claims(raw: str, *, max_age: timedelta) -> dict | None:
    """Claims of an earlier widget token, expired or not (but expired less than `max_age`
    ago), or None. Used only to keep a returning visitor's identity when minting anew; such
    a token is never accepted as a credential."""
    try:
        claims = jwt.decode(
            raw,
            settings.SIMPLE_JWT["SIGNING_KEY"],
            algorithms=[settings.SIMPLE_JWT["ALGORITHM"]],
            audience=settings.WIDGET_TOKEN_AUDIENCE,
            issuer=settings.WIDGET_TOKEN_ISSUER,
            options={"verify_exp": False, "require": ["exp", "iat", "aud", "iss"]},
        )
    except jwt.PyJWTError:
        return None
    if claims.get("token_type") != WidgetToken.token_type or not claims.get("vis") or not claims.get("org"):
        return None
    if claims["exp"] - claims["iat"] > settings.WIDGET_TOKEN_LIFETIME.total_seconds() + 1:
        return None
    if claims["exp"] < time.time() - max_age.total_seconds():
        return None
    return claims


def widget_token_decode(raw: str) -> dict:
    """Returns the verified claims, or raises TokenError."""
    return dict(WidgetToken(raw).payload)
