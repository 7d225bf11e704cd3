"""LLM providers, chosen from settings the way Django chooses `EMAIL_BACKEND`.

`LLM_PROVIDER` may name a provider class by dotted path. Left empty (the default), the
provider follows the model (`assistants.llm_models.model_resolve`: an assistant's `model`,
falling back to `LLM_MODEL`); no model (or the model "offline") means the built-in offline
answerer, anything else litellm.
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
    ToolCall,
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
    "ToolCall",
    "provider_get",
]


@lru_cache(maxsize=8)
def _provider(path: str) -> LLMProvider:
    return import_string(path)()


def provider_get(*, model: str) -> LLMProvider:
    configured = getattr(settings, "LLM_PROVIDER", "")
    if configured:
        return _provider(configured)
    return _provider(OFFLINE if model in {"", "offline"} else LITELLM)
