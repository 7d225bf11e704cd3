"""Secrets at rest: `encrypt(plain, *, purpose)` / `decrypt(token, *, purpose)`.

A stand-in with the exact signature of `core.crypto` (which the core move provides): Fernet
under a key derived by HKDF-SHA256 from SECRET_KEY (and SECRET_KEY_FALLBACKS, so a Django
key rotation keeps secrets readable), the `purpose` being the HKDF info, so a token made for
one purpose never decrypts as another. `decrypt` answers None when the token cannot be read.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


def _cipher(purpose: str) -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    fernets = []
    for key in keys:
        if not key:
            continue
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=f"supportai {purpose} v1".encode()
        ).derive(key.encode())
        fernets.append(Fernet(base64.urlsafe_b64encode(derived)))
    return MultiFernet(fernets)


def encrypt(plain: str, *, purpose: str) -> str:
    return _cipher(purpose).encrypt(plain.encode()).decode()


def decrypt(token: str, *, purpose: str) -> str | None:
    try:
        return _cipher(purpose).decrypt(token.encode()).decode()
    except InvalidToken:
        return None
