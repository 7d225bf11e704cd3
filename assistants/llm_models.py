"""Which LLM models an assistant may name, and which one answers for it.

An assistant may only name a model the operator allows (`models_allowed`): `LLM_MODEL`,
`LLM_ALLOWED_MODELS` and "offline". A stored choice the operator has since withdrawn falls
back to the default instead of failing every answer (`model_resolve`). How a model is
called is chat's business (`chat.llm`).
"""

from __future__ import annotations

from django.conf import settings


def models_allowed() -> list[str]:
    """The model names an assistant may choose, the server default first."""
    names = [settings.LLM_MODEL.strip(), *(name.strip() for name in settings.LLM_ALLOWED_MODELS), "offline"]
    return list(dict.fromkeys(name for name in names if name))


def model_resolve(*, assistant_model: str = "") -> str:
    """The model that answers for an assistant: its own choice while allowed, else the default."""
    chosen = (assistant_model or "").strip()
    if chosen and chosen in models_allowed():
        return chosen
    return settings.LLM_MODEL.strip() or "offline"
