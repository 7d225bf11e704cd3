from __future__ import annotations

from django.db import IntegrityError, transaction

from assistants.models import Assistant, UserContext
from supportai.api.errors import Conflict

ASSISTANT_FIELDS = (
    "name",
    "description",
    "tone",
    "language",
    "default_tasks",
    "is_active",
    "instructions",
    "model",
    "temperature",
    "handoff_after_unanswered",
    "handoff_on_thumbs_down",
)


def assistant_create(*, organization, name: str, **fields) -> Assistant:
    values = {key: value for key, value in fields.items() if key in ASSISTANT_FIELDS}
    return Assistant.objects.create(organization=organization, name=name, **values)


def assistant_update(*, assistant: Assistant, **fields) -> Assistant:
    changed = [key for key in ASSISTANT_FIELDS if key in fields]
    for key in changed:
        setattr(assistant, key, fields[key])
    if changed:
        assistant.save(update_fields=[*changed, "updated_at"])
    return assistant


def assistant_delete(*, assistant: Assistant) -> None:
    assistant.delete()


def user_context_create(*, organization, user_reference: str, traits: dict | None = None) -> UserContext:
    try:
        with transaction.atomic():
            return UserContext.objects.create(
                organization=organization, user_reference=user_reference, traits=traits or {}
            )
    except IntegrityError:
        raise Conflict(
            "A context with this user_reference already exists.",
            data={"user_reference": ["A context with this user_reference already exists."]},
        ) from None


def user_context_update(
    *, user_context: UserContext, user_reference: str | None = None, traits: dict | None = None
) -> UserContext:
    if user_reference is not None:
        user_context.user_reference = user_reference
    if traits is not None:
        user_context.traits = traits
    try:
        with transaction.atomic():
            user_context.save()
    except IntegrityError:
        raise Conflict(
            "A context with this user_reference already exists.",
            data={"user_reference": ["A context with this user_reference already exists."]},
        ) from None
    return user_context


def user_context_delete(*, user_context: UserContext) -> None:
    user_context.delete()


def user_context_merge(*, organization, user_reference: str, traits: dict | None = None) -> UserContext:
    """The context of `user_reference`, created if absent, with `traits` merged over its own
    (a verified visitor's backend-signed traits: newer values win, other keys stay)."""
    with transaction.atomic():
        context, _created = (
            UserContext.objects.for_organization(organization)
            .select_for_update()
            .get_or_create(organization=organization, user_reference=user_reference)
        )
        if traits:
            context.traits = {**(context.traits or {}), **traits}
            context.save(update_fields=["traits", "updated_at"])
    return context
