from __future__ import annotations

from django.core.exceptions import ValidationError

from assistants.llm_models import models_allowed


def model_validate(value: str, *, error_class: type[Exception] = ValidationError) -> str:
    """An assistant's `model`: empty (the server default) or one the operator allows."""
    value = (value or "").strip()
    if value and value not in models_allowed():
        raise error_class(f"Choose one of the models this server allows: {', '.join(models_allowed())}.")
    return value
