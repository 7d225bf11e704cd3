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
