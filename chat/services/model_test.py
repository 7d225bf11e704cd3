"""Settings › AI model's **Test connection**: one tiny completion through the same route an
assistant's answers take (the organization's key and base URL, re-checked), so an operator
learns that a key, model name or self-hosted server is wrong before a visitor does."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings

from assistants.llm_models import model_route
from chat.llm import ChatMessage, CompletionRequest, ProviderError, provider_get

TEST_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class ConnectionTest:
    ok: bool
    detail: str
    milliseconds: int = 0


REPLY_SHOWN_CHARS = 60


def _scrubbed(text: str, secret: str) -> str:
    """A provider's error text, without the key (some echo part of it) and not too long."""
    text = " ".join(str(text or "").split())
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text[:300]


def model_connection_test(*, connection) -> ConnectionTest:
    route = model_route(organization=connection.organization, assistant_model=connection.name)
    if route.refusal:
        return ConnectionTest(ok=False, detail=route.refusal)
    request = CompletionRequest(
        model=route.model,
        messages=(ChatMessage(role="user", content="Reply with the single word OK."),),
        question="connection test",
        temperature=0.0,
        max_tokens=5,
        timeout=min(settings.LLM_TIMEOUT, TEST_TIMEOUT_SECONDS),
        max_retries=0,
        api_base=route.api_base,
        api_base_checked=route.api_base_checked,
        api_key=route.api_key,
    )
    started = time.perf_counter()
    try:
        completion = provider_get(model=route.model).complete(request)
    except ProviderError as error:
        return ConnectionTest(
            ok=False, detail=_scrubbed(str(error), route.api_key) or "The model did not answer."
        )
    elapsed = int((time.perf_counter() - started) * 1000)
    reply = _scrubbed(completion.content, route.api_key)
    if len(reply) > REPLY_SHOWN_CHARS:  # a model that ignores max_tokens: cut at a word, marked
        reply = reply[:REPLY_SHOWN_CHARS].rsplit(" ", 1)[0].rstrip(" ,.;:") + "…"
    reply = reply or "(an empty reply)"
    return ConnectionTest(
        ok=True, detail=f"{route.model} answered “{reply}” in {elapsed} ms.", milliseconds=elapsed
    )
