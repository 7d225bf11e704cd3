import pytest

from core.crypto import decrypt, encrypt


def test_round_trip_and_never_plain(settings):
    token = encrypt("whsec_abc123", purpose="webhook signing secret")
    assert "whsec_abc123" not in token
    assert decrypt(token, purpose="webhook signing secret") == "whsec_abc123"
    assert encrypt("same", purpose="p") != encrypt("same", purpose="p")  # random IV


def test_the_purpose_separates_keys(settings):
    token = encrypt("header value", purpose="action header")
    assert decrypt(token, purpose="webhook signing secret") is None


def test_rotated_secret_key_decrypts_through_fallbacks_and_a_lost_key_gives_none(settings):
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "old-key", []
    token = encrypt("sk-live-1", purpose="llm api key")
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "new-key", ["old-key"]
    assert decrypt(token, purpose="llm api key") == "sk-live-1"
    settings.SECRET_KEY_FALLBACKS = []
    assert decrypt(token, purpose="llm api key") is None


@pytest.mark.parametrize("garbage", ["", "not a token", "gAAAA" + "x" * 80])
def test_garbage_is_none_not_an_exception(garbage):
    assert decrypt(garbage, purpose="p") is None


def test_a_purpose_is_required():
    with pytest.raises(ValueError):
        encrypt("x", purpose="")


def _in_a_process(code: str, **env_overrides: str) -> str:
    """`code`'s last printed line, run with settings read from this environment."""
    import os
    import subprocess
    import sys

    from django.conf import settings

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "supportai.settings", **env_overrides}
    env.pop("PYTEST_CURRENT_TEST", None)
    env.setdefault("SECRET_KEY_FALLBACKS", "")
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=settings.BASE_DIR,
        timeout=120,
    )
    return done.stdout.strip().splitlines()[-1]


def test_secret_key_fallbacks_are_read_from_the_environment_so_a_rotation_keeps_secrets_readable():
    """The README's way to rotate SECRET_KEY: the environment (was not read at all, so a
    rotated key made every stored secret unreadable)."""
    old, new = "old-" + "k" * 60, "new-" + "k" * 60
    token = _in_a_process(
        "from core.crypto import encrypt; print(encrypt('sk-live-2', purpose='llm api key'))", SECRET_KEY=old
    )
    decrypt_code = f"from core.crypto import decrypt; print(repr(decrypt({token!r}, purpose='llm api key')))"
    assert _in_a_process(decrypt_code, SECRET_KEY=new, SECRET_KEY_FALLBACKS=old) == "'sk-live-2'"
    assert _in_a_process(decrypt_code, SECRET_KEY=new) == "None"
    # A blank item (a trailing comma, an empty line in .env) is no key: an empty key would sign anything.
    fallbacks = "from django.conf import settings; print(settings.SECRET_KEY_FALLBACKS)"
    assert _in_a_process(fallbacks, SECRET_KEY=new, SECRET_KEY_FALLBACKS=f" {old}, ,") == f"['{old}']"
