"""Identity secrets for verified visitors: creation, rotation, and reading them back to verify.

At rest a secret is encrypted by `core.crypto` (Fernet under a key derived by HKDF-SHA256
from Django's `SECRET_KEY`, purpose "supportai identity secret v1"). Keys from
`SECRET_KEY_FALLBACKS` still decrypt, so rotating `SECRET_KEY` the Django way keeps every
identity secret readable; a database dump without `SECRET_KEY` reveals none of them.
A one-way hash would not do: verifying an HMAC needs the secret itself.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.crypto import decrypt, encrypt
from organizations.models import IdentitySecret, Organization

SECRET_PREFIX = "ids_"
# `core.crypto` purpose: HKDF info "supportai identity secret v1", the one every stored
# identity secret was encrypted under.
SECRET_PURPOSE = "identity secret"


@transaction.atomic
def identity_secret_rotate(*, organization: Organization, created_by=None) -> tuple[IdentitySecret, str]:
    """A new identity secret for the organization; returns (row, plain secret — shown once).

    The current secret(s) stay valid for IDENTITY_SECRET_GRACE_PERIOD so that pages and
    tokens signed with them just before the rotation keep working; older ones that were
    still in their grace period keep their (earlier) end.
    """
    # Serialises concurrent rotations of one organization.
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    now = timezone.now()
    IdentitySecret.objects.for_organization(organization).filter(expires_at__isnull=True).update(
        expires_at=now + settings.IDENTITY_SECRET_GRACE_PERIOD
    )
    plain = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = IdentitySecret.objects.create(
        organization=organization,
        secret_encrypted=encrypt(plain, purpose=SECRET_PURPOSE),
        hint=plain[-4:],
        created_by=created_by,
    )
    return row, plain


@transaction.atomic
def identity_secret_previous_end(*, organization: Organization) -> int:
    """Stop accepting every previous secret now (one that leaked must not keep working for the
    grace period); returns how many were still accepted. The current secret is untouched."""
    now = timezone.now()
    return (
        IdentitySecret.objects.for_organization(organization)
        .filter(expires_at__gt=now)
        .update(expires_at=now)
    )


def identity_secrets_usable(*, organization: Organization, now: datetime | None = None) -> list[str]:
    """The plain secrets a proof may be signed with now: the current one first, then any
    previous one still in its grace period."""
    now = now or timezone.now()
    rows = (
        IdentitySecret.objects.for_organization(organization)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by("expires_at", "-created_at")  # NULL (current) sorts last in PostgreSQL ASC
    )
    plains = [decrypt(row.secret_encrypted, purpose=SECRET_PURPOSE) for row in rows]
    current = [plain for row, plain in zip(rows, plains, strict=True) if row.expires_at is None and plain]
    previous = [
        plain for row, plain in zip(rows, plains, strict=True) if row.expires_at is not None and plain
    ]
    return current + previous


def identity_secret_status(*, organization: Organization) -> dict:
    """What the dashboard may show: whether a secret is set, its hint and when it was made,
    and the previous secrets still accepted (hint and end of grace) — never a secret."""
    now = timezone.now()
    rows = list(
        IdentitySecret.objects.for_organization(organization).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )
    )
    current = next((row for row in rows if row.expires_at is None), None)
    return {
        "current": current,
        "previous": sorted(
            (row for row in rows if row.expires_at is not None), key=lambda row: row.expires_at
        ),
    }
