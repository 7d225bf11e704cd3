from __future__ import annotations

from django.db import IntegrityError, transaction

from assistants import actions as action_rules
from assistants.models import Action, Assistant, UserContext
from core.errors import Conflict, ValidationFailed

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


@transaction.atomic
def assistant_delete(*, assistant: Assistant) -> None:
    """The assistant and the knowledge only it answers from (the organization's shared knowledge
    stays). The knowledge app (above this one) removes that knowledge through its own service on
    Django's `pre_delete` of the assistant (`knowledge/apps.py`), so any deletion of an assistant
    (a queryset's, the admin's, its organization's cascade) does the same as this one."""
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
            details={"user_reference": ["A context with this user_reference already exists."]},
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
            details={"user_reference": ["A context with this user_reference already exists."]},
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


# --- actions ---------------------------------------------------------------------------

ACTION_FIELDS = (
    "name",
    "description",
    "method",
    "url_template",
    "parameters",
    "requires_verified_visitor",
    "is_active",
)


def _action_invalid(error: action_rules.ActionInvalid) -> ValidationFailed:
    return ValidationFailed(error.message, details={error.field: [error.message]})


def _action_check(action: Action) -> None:
    """Every rule of assistants.actions on the action as it would be saved."""
    try:
        action.name = action_rules.name_validate(action.name)
        action.description = action_rules.description_validate(action.description)
        if action.method not in Action.Method.values:
            raise action_rules.ActionInvalid("method", f"Choose one of {', '.join(Action.Method.values)}.")
        action.url_template = action_rules.url_template_validate(action.url_template)
        action.parameters = action_rules.parameters_validate(action.parameters)
        action_rules.template_against_schema(action.url_template, action.parameters)
    except action_rules.ActionInvalid as error:
        raise _action_invalid(error) from None


def _action_save(action: Action, **kwargs) -> Action:
    try:
        with transaction.atomic():
            action.save(**kwargs)
    except IntegrityError:
        message = "This assistant already has an action with this name."
        raise Conflict(message, details={"name": [message]}) from None
    return action


def action_create(*, organization, assistant: Assistant, headers: dict | None = None, **fields) -> Action:
    if assistant.organization_id != organization.pk:
        raise ValidationFailed("Unknown assistant.")
    values = {key: value for key, value in fields.items() if key in ACTION_FIELDS}
    action = Action(organization=organization, assistant=assistant, **values)
    _action_check(action)
    try:
        plain = action_rules.headers_validate(headers)
    except action_rules.ActionInvalid as error:
        raise _action_invalid(error) from None
    action.headers = action_rules.headers_merge({}, plain)
    return _action_save(action)


def action_update(
    *, action: Action, headers: dict | None = None, replace_headers: bool = False, **fields
) -> Action:
    """Changes the given fields. `headers`: a value sets that header, None removes it; with
    `replace_headers` (a full update) the given headers replace all stored ones."""
    changed = [key for key in ACTION_FIELDS if key in fields]
    for key in changed:
        setattr(action, key, fields[key])
    _action_check(action)
    if headers is not None or replace_headers:
        try:
            plain = action_rules.headers_validate(headers)
        except action_rules.ActionInvalid as error:
            raise _action_invalid(error) from None
        action.headers = action_rules.headers_merge({} if replace_headers else action.headers, plain)
        changed.append("headers")
    return _action_save(action, update_fields=[*dict.fromkeys(changed), "updated_at"])


def action_delete(*, action: Action) -> None:
    action.delete()
