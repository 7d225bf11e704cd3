"""Widget configurations and the widget tokens browsers use to talk to us."""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.db import transaction

from assistants.models import Assistant
from assistants.services import assistant_create, user_context_merge
from chat.selectors import token_erased
from core.errors import AuthenticationFailed, NotFound, PermissionDenied, ValidationFailed
from organizations.models import ApiKey, Organization
from organizations.selectors import api_key_widget_facing
from organizations.services import api_key_create
from widget.identity import user_id_normalize, visitor_id_for_user, visitor_identity_verify
from widget.models import Widget
from widget.origins import InvalidOrigin, origin_allowed, origin_normalize
from widget.tokens import widget_token_issue, widget_token_previous_claims, widget_token_renewal_claim

MAX_ALLOWED_DOMAINS = 50
MAX_SUGGESTED_QUESTIONS = 8
MAX_SUGGESTED_QUESTION_LENGTH = 200
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_INSTANCE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Options a widget understands, with the type each must have.
WIDGET_OPTIONS: dict[str, type] = {
    "instance": str,
    "show_sources": bool,
    "collect_feedback": bool,
    "auto_open": bool,
    "human_handoff": str,
}
# When the "Talk to a person" control shows: once the assistant has answered, always, or never.
HUMAN_HANDOFF_CHOICES = ("after_answer", "always", "off")
_TEXT_LIMITS = {"title": 100, "greeting": 500, "placeholder": 200, "launcher_label": 50}


class InvalidClient(AuthenticationFailed):
    code = "invalid_client"
    default_message = "Authentication required - unknown or revoked client_id."


class IdentityRequired(PermissionDenied):
    code = "identity_required"
    default_message = (
        "This widget only serves verified visitors: send user_id + user_hash or user_token "
        "signed with the organization's identity secret."
    )


class OriginNotAllowed(PermissionDenied):
    code = "origin_not_allowed"
    default_message = "This site is not allowed to use this widget (check the widget's allowed domains)."


# --- validation (pure; raise ValidationFailed with field errors) ------------------------


def color_normalize(value) -> str:
    if not isinstance(value, str) or not _COLOR.match(value.strip()):
        raise ValidationFailed(
            "primary_color must be a hex colour like #2563eb.",
            details={"primary_color": ["Must be a hex colour like #2563eb."]},
        )
    value = value.strip().lower()
    if len(value) == 4:
        value = "#" + "".join(ch * 2 for ch in value[1:])
    return value


def allowed_domains_normalize(value) -> list[str]:
    if not isinstance(value, list):
        raise ValidationFailed(
            "allowed_domains must be a list of origins.",
            details={
                "allowed_domains": ["Must be a list of hosts or origins like https://shop.example.com."]
            },
        )
    if len(value) > MAX_ALLOWED_DOMAINS:
        raise ValidationFailed(
            f"At most {MAX_ALLOWED_DOMAINS} allowed domains.",
            details={"allowed_domains": [f"At most {MAX_ALLOWED_DOMAINS} entries."]},
        )
    normalized: list[str] = []
    errors: list[str] = []
    for entry in value:
        try:
            origin = origin_normalize(entry, allow_wildcard=True, bare_host=True)
        except InvalidOrigin as error:
            errors.append(f"{str(entry)[:100]!r} {error}.")
            continue
        if origin not in normalized:
            normalized.append(origin)
    if errors:
        raise ValidationFailed("allowed_domains: " + " ".join(errors), details={"allowed_domains": errors})
    return normalized


def suggested_questions_normalize(value) -> list[str]:
    message = (
        f"Must be a list of at most {MAX_SUGGESTED_QUESTIONS} non-empty questions of at most "
        f"{MAX_SUGGESTED_QUESTION_LENGTH} characters."
    )
    if not isinstance(value, list) or len(value) > MAX_SUGGESTED_QUESTIONS:
        raise ValidationFailed("suggested_questions: " + message, details={"suggested_questions": [message]})
    questions = []
    for question in value:
        if not isinstance(question, str) or not question.strip():
            raise ValidationFailed(
                "suggested_questions: " + message, details={"suggested_questions": [message]}
            )
        if len(question.strip()) > MAX_SUGGESTED_QUESTION_LENGTH:
            raise ValidationFailed(
                "suggested_questions: " + message, details={"suggested_questions": [message]}
            )
        questions.append(question.strip())
    return questions


def options_normalize(value) -> dict:
    if not isinstance(value, dict):
        raise ValidationFailed("options must be an object.", details={"options": ["Must be an object."]})
    errors = []
    for key, option_value in value.items():
        expected = WIDGET_OPTIONS.get(key)
        if expected is None:
            errors.append(f"Unknown option {key!r} (known: {', '.join(sorted(WIDGET_OPTIONS))}).")
        elif not isinstance(option_value, expected):
            errors.append(f"Option {key!r} must be a {expected.__name__}.")
        elif key == "instance" and not _INSTANCE.match(option_value):
            errors.append("Option 'instance' must be 1-64 letters, digits, '-' or '_'.")
        elif key == "human_handoff" and option_value not in HUMAN_HANDOFF_CHOICES:
            errors.append(f"Option 'human_handoff' must be one of {', '.join(HUMAN_HANDOFF_CHOICES)}.")
    if errors:
        raise ValidationFailed("options: " + " ".join(errors), details={"options": errors})
    return dict(value)


def _text_normalize(field: str, value) -> str:
    limit = _TEXT_LIMITS[field]
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be a string.", details={field: ["Must be a string."]})
    value = value.strip()
    if field in {"title", "launcher_label"} and not value:
        raise ValidationFailed(f"{field} must not be empty.", details={field: ["Must not be empty."]})
    if len(value) > limit:
        message = f"At most {limit} characters."
        raise ValidationFailed(f"{field}: {message}", details={field: [message]})
    return value


def _assistant_for(*, organization: Organization, assistant_id) -> Assistant:
    try:
        assistant_uuid = uuid.UUID(str(assistant_id))
    except (TypeError, ValueError, AttributeError):
        assistant_uuid = None
    assistant = (
        Assistant.objects.for_organization(organization).filter(pk=assistant_uuid).first()
        if assistant_uuid
        else None
    )
    if assistant is None:
        # Same answer for "does not exist" and "belongs to someone else".
        raise ValidationFailed(
            "assistant_id: no such assistant.", details={"assistant_id": ["No such assistant."]}
        )
    return assistant


def _fields_normalize(fields: dict) -> dict:
    cleaned = {}
    for field, value in fields.items():
        if field in _TEXT_LIMITS:
            cleaned[field] = _text_normalize(field, value)
        elif field == "primary_color":
            cleaned[field] = color_normalize(value)
        elif field == "position":
            if value not in Widget.Position.values:
                choices = ", ".join(Widget.Position.values)
                raise ValidationFailed(
                    f"position must be one of {choices}.", details={field: [f"One of {choices}."]}
                )
            cleaned[field] = value
        elif field == "suggested_questions":
            cleaned[field] = suggested_questions_normalize(value)
        elif field == "allowed_domains":
            cleaned[field] = allowed_domains_normalize(value)
        elif field == "options":
            cleaned[field] = options_normalize(value)
        elif field in {"is_active", "require_verified_visitors"}:
            if not isinstance(value, bool):
                raise ValidationFailed(
                    f"{field} must be true or false.", details={field: ["Must be a boolean."]}
                )
            cleaned[field] = value
        else:
            raise ValidationFailed(f"Unknown field {field!r}.", details={field: ["Unknown field."]})
    return cleaned


# --- widgets -------------------------------------------------------------------------


def assistant_default_get_or_create(*, organization: Organization) -> Assistant:
    """The organization's first active assistant, or a new one for a first widget."""
    assistant = (
        Assistant.objects.for_organization(organization).filter(is_active=True).order_by("created_at").first()
    )
    if assistant is None:
        assistant = assistant_create(
            organization=organization,
            name="Support assistant",
            description="Answers visitors' questions from the knowledge base.",
            default_tasks=["answer_questions", "provide_support"],
        )
    return assistant


@transaction.atomic
def widget_create(*, organization: Organization, assistant_id=None, **fields) -> Widget:
    if assistant_id is None:
        assistant = assistant_default_get_or_create(organization=organization)
    else:
        assistant = _assistant_for(organization=organization, assistant_id=assistant_id)
    widget = Widget(organization=organization, assistant=assistant, **_fields_normalize(fields))
    widget.save()
    return widget


@transaction.atomic
def widget_update(*, widget: Widget, assistant_id=None, **fields) -> Widget:
    cleaned = _fields_normalize(fields)
    if assistant_id is not None:
        widget.assistant = _assistant_for(organization=widget.organization, assistant_id=assistant_id)
    for field, value in cleaned.items():
        setattr(widget, field, value)
    widget.save()
    return widget


def widget_delete(*, widget: Widget) -> None:
    widget.delete()


def widget_client_key_get_or_create(*, organization: Organization) -> ApiKey:
    """The API key whose public client_id widgets embed (created, secret discarded, if none)."""
    api_key = api_key_widget_facing(organization=organization)
    if api_key is None:
        api_key, _secret = api_key_create(organization=organization, name="Widget")
    return api_key


# --- widget tokens ---------------------------------------------------------------------


def _returning_visitor(
    *, visitor_token: str | None, api_key: ApiKey, widget: Widget | None, origin: str | None
) -> str | None:
    """The visitor id of an earlier token, if it may be renewed, else None (a fresh visitor).

    Renewal keeps an anonymous visitor's conversations across page loads and days away. What
    renews is only what the widget itself would present: a validly signed token, expired less
    than `WIDGET_VISITOR_MAX_AGE` ago, minted for this same client id key (claim `cid`: a
    revoked key's tokens stay ended), this same widget (claim `wid`, None for both when minted
    without one), and this same origin; never a verified customer's (their history needs a
    fresh proof); never a visitor erased since (`chat.selectors.token_erased`); and each token
    only once (`widget_token_renewal_claim`)."""
    if not visitor_token:
        return None
    claims = widget_token_previous_claims(visitor_token, max_age=settings.WIDGET_VISITOR_MAX_AGE)
    if claims is None or claims["org"] != str(api_key.organization_id):
        return None
    if claims.get("uid"):
        # A verified customer's visitor id is theirs only while a proof is presented: a
        # token without one (signed out, another person on the same browser) starts afresh.
        return None
    if claims.get("cid") != str(api_key.pk):
        return None
    if claims.get("wid") != (str(widget.pk) if widget is not None else None):
        return None
    if (claims.get("origin") or None) != origin:
        return None
    if token_erased(organization_id=api_key.organization_id, claims=claims):
        # The visitor was erased after this token was issued: whoever presents it starts afresh.
        return None
    if not widget_token_renewal_claim(claims):
        return None
    return claims["vis"]


def widget_token_create(
    *,
    client_id: str,
    config_id=None,
    origin: str | None,
    referer_origin: str | None = None,
    visitor_token: str | None = None,
    own_origin: str | None = None,
    user_id=None,
    user_hash=None,
    user_token=None,
) -> tuple[str, int, Widget | None]:
    """Mint a widget token for a public client_id, if the calling site may have one.

    `origin` is the request's normalised Origin (None when missing or `null`); a Referer that
    disagrees with the Origin is refused, as a browser never sends such a pair. The previous
    token of an anonymous visitor (`visitor_token`: same client id, widget and site, expired
    less than a week ago, renewing once; `_returning_visitor`) keeps the visitor id, so a
    returning visitor sees their own sessions; anything else gets a fresh visitor.
    `own_origin` is this server's origin, which is always allowed.
    With `user_id` + `user_hash` or `user_token` (a proof signed with the organization's
    identity secret) the visitor is that customer: its visitor id is the customer's own on
    every device and its context is created or updated; an invalid proof is a 401. A
    `user_id` without proof is only remembered as an unverified claim. A widget that
    requires verified visitors (or, without `config_id`, any of the organization's active
    widgets that does) refuses a request without a proof.
    Returns (token, expires_in, widget).
    """
    api_key = (
        ApiKey.objects.unscoped()
        .select_related("organization")
        .filter(client_id=client_id, revoked_at__isnull=True)
        .first()
        if client_id
        else None
    )
    if api_key is None:
        raise InvalidClient()
    organization = api_key.organization
    widget = None
    if config_id is not None:
        try:
            config_uuid = uuid.UUID(str(config_id))
        except (TypeError, ValueError, AttributeError):
            raise ValidationFailed(
                "config_id must be a widget id (UUID).", details={"config_id": ["Not a UUID."]}
            )
        widget = Widget.objects.for_organization(organization).filter(pk=config_uuid).first()
        if widget is None:
            raise NotFound("Widget not found.")
        if not widget.is_active:
            raise OriginNotAllowed("This widget is switched off.")
        domains = list(widget.allowed_domains or [])
        require_verified = widget.require_verified_visitors
    else:
        require_verified = (
            Widget.objects.for_organization(organization)
            .filter(is_active=True, require_verified_visitors=True)
            .exists()
        )
        domains = []
        for allowed in (
            Widget.objects.for_organization(organization)
            .filter(is_active=True)
            .values_list("allowed_domains", flat=True)
        ):
            domains.extend(allowed or [])
    # Our own pages (the dashboard preview, the hosted frame whose parents `frame-ancestors`
    # restricts) are always allowed: no other page can make a browser send our origin.
    if domains and own_origin:
        domains = [*domains, own_origin]
    if domains:
        if origin is None or not origin_allowed(origin=origin, allowed_domains=domains):
            raise OriginNotAllowed()
        if referer_origin is not None and referer_origin != origin:
            raise OriginNotAllowed("The request's Referer does not match its Origin.")
    identity = None
    claimed_user_id = None
    if user_hash is not None or user_token is not None:
        identity = visitor_identity_verify(
            organization=organization, user_id=user_id, user_hash=user_hash, user_token=user_token
        )
    elif require_verified:
        raise IdentityRequired()
    elif user_id is not None:
        claimed_user_id = user_id_normalize(user_id)
    if identity is not None:
        visitor_id = visitor_id_for_user(organization=organization, user_id=identity.user_id)
        traits = dict(identity.traits)
        traits.update(
            {key: value for key, value in (("email", identity.email), ("name", identity.name)) if value}
        )
        user_context_merge(organization=organization, user_reference=identity.user_id, traits=traits)
    else:
        visitor_id = _returning_visitor(
            visitor_token=visitor_token, api_key=api_key, widget=widget, origin=origin
        )
    token, expires_in = widget_token_issue(
        organization_id=organization.id,
        widget_id=widget.id if widget else None,
        visitor_id=visitor_id,
        origin=origin,
        api_key_id=api_key.pk,
        verified_user_id=identity.user_id if identity is not None else None,
        claimed_user_id=claimed_user_id,
    )
    return token, expires_in, widget
