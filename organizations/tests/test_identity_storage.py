"""Identity secrets stored before `core.crypto` existed keep working after the move."""

from organizations.identity import identity_secrets_usable
from organizations.models import IdentitySecret

# Made by organizations/identity.py's own Fernet code before core.crypto existed (HKDF
# info "supportai identity secret v1", under OLD_KEY).
OLD_KEY = "a-secret-key-from-before-core-crypto"
OLD_TOKEN = "gAAAAABrFRFonemNgF3qkpOX6IqnuLppvu_Hunevo3GFFuhEFO35b9b2OK3nRgKAnn50x2GcuQvNMlaZrVMJQlz4BSQiKl1tfcYqr-opH9l76gVnVVTT-Ek="


def test_an_identity_secret_stored_before_the_move_still_decrypts(tenant, settings):
    IdentitySecret.objects.create(organization=tenant.organization, secret_encrypted=OLD_TOKEN, hint="move")
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-newer-key", [OLD_KEY]
    assert identity_secrets_usable(organization=tenant.organization) == ["ids_stored-before-the-move"]
    settings.SECRET_KEY_FALLBACKS = []
    assert identity_secrets_usable(organization=tenant.organization) == []
