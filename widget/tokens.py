"""Widget tokens: short-lived JWTs (simplejwt) that carry organization, widget and visitor.

Decoding pins the algorithm (HS256), and requires audience, issuer, `exp` and `iat`; a
token whose lifetime exceeds the configured policy is refused even if correctly signed.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta

import jwt
from django.conf import settings
from django.core.cache import cache
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import Token

logger = logging.getLogger(__name__)


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
    preview: bool = False,
) -> tuple[str, int]:
    """`api_key_id`: the key whose public client_id the token was minted for (claim `cid`);
    revoking that key ends the token on its next request, as deactivating its widget does.
    `verified_user_id` (claim `uid`): the customer the organization's server proved this
    visitor to be; `claimed_user_id` (claim `cuid`): a user id the page claimed without
    proof, kept only as unverified metadata on the sessions it creates. `preview` (claim
    `preview`): minted by the dashboard for a signed-in member's widget preview, which works
    even while the widget requires verified visitors."""
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
    if preview:
        token["preview"] = True
    token.set_iat()
    return str(token), int(settings.WIDGET_TOKEN_LIFETIME.total_seconds())


def widget_token_previous_claims(raw: str, *, max_age: timedelta) -> dict | None:
    """Claims of an earlier widget token, expired or not (but expired less than `max_age`
    ago), or None. Used only to keep a returning visitor's identity when minting anew; such
    a token is never accepted as a credential. The caller decides whether it may renew
    (same key, widget and origin; not a verified visitor's; `widget_token_renewal_claim`)."""
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


def widget_token_renewal_claim(claims: dict) -> bool:
    """Whether this earlier token (its `jti`) may still renew: the first time, or again within
    `WIDGET_VISITOR_RENEWAL_GRACE` of the first (two tabs of one visitor renewing together).
    The widget always presents its newest token, so a copy of an older one (from a log, a
    shared HAR file, a screenshot of devtools) renews nothing: whoever presents a token first
    owns its chain. The record lives in the shared cache as long as the token could be
    presented; if the cache cannot answer, the renewal is refused (a fresh visitor)."""
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        return False
    now = time.time()
    grace = settings.WIDGET_VISITOR_RENEWAL_GRACE.total_seconds()
    lives_until = claims["exp"] + settings.WIDGET_VISITOR_MAX_AGE.total_seconds() + grace
    key = f"widget-token-renewed:{jti}"
    try:
        if cache.add(key, now, timeout=max(1, int(lives_until - now) + 1)):
            return True
        first = cache.get(key)
    except Exception:  # noqa: BLE001 - any cache failure: renew nothing rather than answer 500
        logger.warning("widget token renewal: the cache did not answer; starting a fresh visitor")
        return False
    return isinstance(first, int | float) and now - first <= grace


def widget_token_decode(raw: str) -> dict:
    """Returns the verified claims, or raises TokenError."""
    return dict(WidgetToken(raw).payload)
