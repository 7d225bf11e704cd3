"""Verified visitors: checking the proof a customer's server gives us of who a visitor is.

Two forms, both made with the organization's identity secret (organizations.identity):
`user_hash` = lower-case hex HMAC-SHA256 of the UTF-8 `user_id`, or `user_token` = an
HS256 JWT with `sub`, optional `email`, `name`, `traits`, and an `exp` at most 24 h ahead.
Any failure is the same 401, so a caller learns nothing about which part was wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field

import jwt
from django.conf import settings

from core.errors import AuthenticationFailed, ValidationFailed
from organizations.identity import identity_secrets_usable
from organizations.models import Organization

MAX_USER_ID_LENGTH = 255
MAX_TRAITS_BYTES = 4096
_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Clock skew we forgive between the customer's server and ours, on `exp` and `iat`.
_LEEWAY_SECONDS = 60


class InvalidIdentityProof(AuthenticationFailed):
    code = "invalid_identity"
    default_message = "Authentication required - the visitor's identity proof is invalid or expired."


@dataclass(frozen=True)
class VisitorIdentity:
    user_id: str
    email: str = ""
    name: str = ""
    traits: dict = field(default_factory=dict)


def visitor_id_for_user(*, organization: Organization, user_id: str) -> str:
    """The widget visitor id of a verified customer: the same on every device (so their
    history follows them), different per organization, and not the user id itself."""
    digest = hashlib.sha256(f"{organization.pk}:{user_id}".encode()).hexdigest()[:32]
    return f"u_{digest}"


def user_id_normalize(value) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_USER_ID_LENGTH:
        raise ValidationFailed(
            f"user_id must be a non-empty string of at most {MAX_USER_ID_LENGTH} characters.",
            details={"user_id": [f"A non-empty string of at most {MAX_USER_ID_LENGTH} characters."]},
        )
    return value


def _hash_verify(*, secrets: list[str], user_id: str, user_hash: str) -> bool:
    if not isinstance(user_hash, str) or not _HEX_SHA256.match(user_hash):
        return False
    matched = False
    for secret in secrets:  # no early exit: the time taken does not say which secret matched
        expected = hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
        matched |= hmac.compare_digest(expected, user_hash)
    return matched


def _token_claims(*, secrets: list[str], user_token: str) -> dict | None:
    try:
        header = jwt.get_unverified_header(user_token)
    except jwt.PyJWTError:
        return None
    if header.get("alg") != "HS256":  # never "none", never a public-key algorithm
        return None
    for secret in secrets:
        try:
            return jwt.decode(
                user_token,
                secret,
                algorithms=["HS256"],
                options={"require": ["sub", "exp"], "verify_aud": False},
                leeway=_LEEWAY_SECONDS,
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError:
            return None
    return None


def _identity_from_claims(claims: dict) -> VisitorIdentity | None:
    if claims["exp"] > time.time() + settings.IDENTITY_TOKEN_MAX_AHEAD.total_seconds() + _LEEWAY_SECONDS:
        return None  # a token valid for longer than a day is a standing credential: refused
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > MAX_USER_ID_LENGTH:
        return None
    email, name, traits = claims.get("email", ""), claims.get("name", ""), claims.get("traits", {})
    if not isinstance(email, str) or not isinstance(name, str) or len(email) > 254 or len(name) > 200:
        return None
    if not isinstance(traits, dict) or len(json.dumps(traits)) > MAX_TRAITS_BYTES:
        return None
    return VisitorIdentity(user_id=subject, email=email, name=name, traits=traits)


def visitor_identity_verify(
    *, organization: Organization, user_id=None, user_hash=None, user_token=None
) -> VisitorIdentity:
    """The customer proven by `user_id` + `user_hash` or by `user_token`, or InvalidIdentityProof."""
    if user_token is not None and (user_hash is not None or user_id is not None):
        raise ValidationFailed(
            "Send either user_token or user_id + user_hash, not both.",
            details={"user_token": ["Not together with user_id/user_hash."]},
        )
    secrets = identity_secrets_usable(organization=organization)
    if user_token is not None:
        if not isinstance(user_token, str) or not secrets:
            raise InvalidIdentityProof()
        claims = _token_claims(secrets=secrets, user_token=user_token)
        identity = _identity_from_claims(claims) if claims is not None else None
        if identity is None:
            raise InvalidIdentityProof()
        return identity
    if user_id is None:
        raise ValidationFailed(
            "user_hash needs the user_id it was made for.", details={"user_id": ["Required."]}
        )
    user_id = user_id_normalize(user_id)
    if not secrets or not _hash_verify(secrets=secrets, user_id=user_id, user_hash=user_hash):
        raise InvalidIdentityProof()
    return VisitorIdentity(user_id=user_id)
