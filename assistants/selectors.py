from __future__ import annotations

import uuid

from django.db.models import QuerySet

from assistants.models import Action, Assistant, UserContext
from core.errors import NotFound


def assistant_list(*, organization) -> QuerySet[Assistant]:
    return Assistant.objects.for_organization(organization).order_by("-created_at")


def assistant_get(*, organization, assistant_id) -> Assistant:
    """The organization's assistant, or NotFound (also for a malformed id)."""
    try:
        assistant_id = uuid.UUID(str(assistant_id))
    except ValueError:
        raise NotFound("Assistant not found.") from None
    assistant = Assistant.objects.for_organization(organization).filter(pk=assistant_id).first()
    if assistant is None:
        raise NotFound("Assistant not found.")
    return assistant


def user_context_list(*, organization, user_reference: str | None = None) -> QuerySet[UserContext]:
    queryset = UserContext.objects.for_organization(organization).order_by("-created_at")
    if user_reference:
        queryset = queryset.filter(user_reference=user_reference)
    return queryset


def user_context_resolve(*, organization, reference: str) -> UserContext | None:
    """A context by its UUID or by its `user_reference` (the API reference's examples pass the user id)."""
    scoped = UserContext.objects.for_organization(organization)
    try:
        found = scoped.filter(pk=uuid.UUID(str(reference))).first()  # its id
    except ValueError:
        found = None
    if found is None:  # or its user_reference
        found = scoped.filter(user_reference=str(reference)).first()
    return found


def action_list(*, organization, assistant: Assistant) -> QuerySet[Action]:
    return Action.objects.for_organization(organization).filter(assistant=assistant).order_by("name")


def action_get(*, organization, assistant: Assistant, action_id) -> Action:
    """The assistant's action, or NotFound (also for a malformed id or another tenant's)."""
    try:
        action_id = uuid.UUID(str(action_id))
    except ValueError:
        raise NotFound("Action not found.") from None
    action = Action.objects.for_organization(organization).filter(assistant=assistant, pk=action_id).first()
    if action is None:
        raise NotFound("Action not found.")
    return action


def actions_offerable(*, assistant: Assistant, verified: bool) -> list[Action]:
    """The assistant's active actions a turn may offer the model (those requiring a verified
    visitor only when the one asking is verified)."""
    queryset = Action.objects.for_organization(assistant.organization_id).filter(
        assistant=assistant, is_active=True
    )
    if not verified:
        queryset = queryset.filter(requires_verified_visitor=False)
    return list(queryset.order_by("name"))
