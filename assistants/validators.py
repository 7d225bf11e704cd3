from __future__ import annotations

from django.core.exceptions import ValidationError

from assistants.llm_models import models_allowed


def model_validate(value: str, *, organization=None, error_class: type[Exception] = ValidationError) -> str:
    """An assistant's `model`: empty (the server default), one the server operator allows, or
    one the organization configured in Settings › AI model."""
    value = (value or "").strip()
    allowed = models_allowed(organization=organization)
    if value and value not in allowed:
        raise error_class(
            f"Choose one of the models this server allows or your organization configured: {', '.join(allowed)}."
        )
    return value
