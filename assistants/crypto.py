"""Secrets at rest for actions: `encrypt`/`decrypt` with a purpose (one derived key each).

The signature is `core.crypto`'s (`encrypt(plain, *, purpose)`, `decrypt(token, *, purpose)`
→ None when undecryptable); this module uses it when it exists and otherwise derives the
same kind of key itself: Fernet under HKDF-SHA256(SECRET_KEY, info=purpose), with
`SECRET_KEY_FALLBACKS` still decrypting after a rotation.
"""

from __future__ import annotations

try:  # the shared implementation, once core/ has it
    from core.crypto import decrypt, encrypt
except ImportError:  # pragma: no cover - exercised until core/crypto.py lands
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
        except (InvalidToken, ValueError, TypeError):
            return None


__all__ = ["decrypt", "encrypt"]
