"""Secrets at rest: `encrypt` / `decrypt`, the one way any app stores a secret it must
read back (identity secrets, webhook signing secrets, action header values, API keys of
outside services).

Fernet (AES-128-CBC + HMAC-SHA256) under a key derived by HKDF-SHA256 from Django's
`SECRET_KEY`, with HKDF info `"supportai {purpose} v1"`: a value encrypted for one purpose
does not decrypt for another, and each purpose is a separate key. Keys derived from
`SECRET_KEY_FALLBACKS` still decrypt (MultiFernet), so rotating `SECRET_KEY` the Django
way keeps every stored secret readable; a database dump without `SECRET_KEY` reveals none.
A purpose is a fixed string per kind of secret, e.g. "identity secret" (HKDF info
"supportai identity secret v1", what organizations/identity.py always used); changing it
makes every value stored under the old one unreadable.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


@functools.lru_cache(maxsize=64)
def _fernet(secret_key: str, purpose: str) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"supportai {purpose} v1".encode()
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def _cipher(purpose: str) -> MultiFernet:
    if not purpose:
        raise ValueError("encrypt/decrypt need a purpose")
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet(key, purpose) for key in keys if key])


def encrypt(plain: str, *, purpose: str) -> str:
    """A URL-safe token holding `plain`, encrypted under the current SECRET_KEY."""
    return _cipher(purpose).encrypt(plain.encode()).decode()


def decrypt(token: str, *, purpose: str) -> str | None:
    """`plain` back, or None when the token was made under a key we no longer have, for
    another purpose, or is not a token at all — unusable, never a 500."""
    try:
        return _cipher(purpose).decrypt(token.encode()).decode()
    except (InvalidToken, UnicodeError, TypeError, AttributeError):
        return None
