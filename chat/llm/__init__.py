"""LLM providers, chosen from settings the way Django chooses `EMAIL_BACKEND`.

`LLM_PROVIDER` may name a provider class by dotted path. Left empty (the default), the
provider follows the model: an assistant's `model`, falling back to `LLM_MODEL`; no model
(or the model "offline") means the built-in offline answerer, anything else litellm.

An assistant may only name a model the operator allows (`models_allowed`): `LLM_MODEL`,
`LLM_ALLOWED_MODELS` and "offline". A stored choice the operator has since withdrawn falls
back to the default instead of failing every answer.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

from chat.llm.types import (
    ChatMessage,
    Completion,
    CompletionRequest,
    Delta,
    Evidence,
    LLMProvider,
    ProviderError,
    ProviderOverloaded,
    ProviderTimeout,
)

OFFLINE = "chat.llm.offline.OfflineAnswerer"
LITELLM = "chat.llm.litellm_provider.LiteLLMProvider"

__all__ = [
    "ChatMessage",
    "Completion",
    "CompletionRequest",
    "Delta",
    "Evidence",
    "LLMProvider",
    "ProviderError",
    "ProviderOverloaded",
    "ProviderTimeout",
    "model_resolve",
    "models_allowed",
    "provider_get",
]


def models_allowed() -> list[str]:
    """The model names an assistant may choose, the server default first."""
    names = [settings.LLM_MODEL.strip(), *(name.strip() for name in settings.LLM_ALLOWED_MODELS), "offline"]
    return list(dict.fromkeys(name for name in names if name))


def model_resolve(*, assistant_model: str = "") -> str:
    chosen = (assistant_model or "").strip()
    if chosen and chosen in models_allowed():
        return chosen
    return settings.LLM_MODEL.strip() or "offline"


@lru_cache(maxsize=8)
def _provider(path: str) -> LLMProvider:
    return import_string(path)()


def provider_get(*, model: str) -> LLMProvider:
    configured = getattr(settings, "LLM_PROVIDER", "")
    if configured:
        return _provider(configured)
    return _provider(OFFLINE if model in {"", "offline"} else LITELLM)
