from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.utils.html import escape

from core.errors import NotFound
from organizations import selectors as organization_selectors
from organizations.models import Organization
from organizations.selectors import api_key_widget_facing
from widget.models import Widget
from widget.origins import origin_allowed


def widget_list(*, organization: Organization) -> QuerySet[Widget]:
    return Widget.objects.for_organization(organization).select_related("assistant")


def widget_find(*, organization: Organization, widget_id) -> Widget | None:
    """The organization's widget, or None (also for ids that are not UUIDs)."""
    try:
        widget_uuid = uuid.UUID(str(widget_id))
    except (TypeError, ValueError, AttributeError):
        return None
    return widget_list(organization=organization).filter(pk=widget_uuid).first()


def widget_get(*, organization: Organization, widget_id) -> Widget:
    """The organization's widget, or NotFound (the same for another organization's or a
    malformed id)."""
    widget = widget_find(organization=organization, widget_id=widget_id)
    if widget is None:
        raise NotFound("Widget not found.")
    return widget


def widget_find_public(*, widget_id) -> Widget | None:
    """An active widget by id alone, for its public hosted page (the id is unguessable and
    the page shows only what the widget shows anyway)."""
    try:
        widget_uuid = uuid.UUID(str(widget_id))
    except (TypeError, ValueError, AttributeError):
        return None
    return (
        Widget.objects.unscoped()
        .select_related("organization", "assistant")
        .filter(pk=widget_uuid, is_active=True)
        .first()
    )


def widget_public_config(*, widget: Widget) -> dict:
    """What a visitor's browser may know about a widget (no allowed domains, no org data)."""
    options = widget.options or {}
    # Outside business hours the greeting says the team is away and when it is back.
    hours = organization_selectors.business_hours_status(organization=widget.organization)
    return {
        "id": str(widget.id),
        "assistant_id": str(widget.assistant_id),
        "title": widget.title,
        "greeting": widget.greeting,
        "placeholder": widget.placeholder,
        "primary_color": widget.primary_color,
        "position": widget.position,
        "launcher_label": widget.launcher_label,
        "suggested_questions": list(widget.suggested_questions or []),
        "instance": options.get("instance", ""),
        "show_sources": options.get("show_sources", True),
        "collect_feedback": options.get("collect_feedback", True),
        "auto_open": options.get("auto_open", False),
        "human_handoff": options.get("human_handoff", "after_answer"),
        "is_active": widget.is_active,
        "team_available": hours.open,
        "team_back_at": hours.next_open.isoformat() if hours.next_open else None,
    }


def widget_origin_allowed(*, organization: Organization, widget_id, origin: str | None) -> bool:
    """Is `origin` allowed for this widget (or, without a widget, for the organization)?

    With a widget: its own allowed domains. Without one: the union of the allowed domains of
    all the organization's active widgets. In both cases an empty list means anywhere.
    """
    if widget_id:
        widget = widget_find(organization=organization, widget_id=widget_id)
        if widget is None:
            return False
        return origin_allowed(origin=origin, allowed_domains=widget.allowed_domains or [])
    domains: list[str] = []
    for allowed in (
        Widget.objects.for_organization(organization)
        .filter(is_active=True)
        .values_list("allowed_domains", flat=True)
    ):
        domains.extend(allowed or [])
    return origin_allowed(origin=origin, allowed_domains=domains)


def widget_embed_snippet(*, widget: Widget, base_url: str, client_id: str | None = None) -> str | None:
    """The `<script>` tag a customer pastes into their site (None until the org has an API key)."""
    if client_id is None:
        api_key = api_key_widget_facing(organization=widget.organization)
        if api_key is None:
            return None
        client_id = api_key.client_id
    instance = (widget.options or {}).get("instance") or "primary-widget"
    attributes = {
        "src": f"{base_url.rstrip('/')}/widget.js",
        "data-client-id": client_id,
        "data-assistant-id": str(widget.assistant_id),
        "data-config-id": str(widget.id),
        "data-instance-id": instance,
    }
    rendered = " ".join(f'{name}="{escape(value)}"' for name, value in attributes.items())
    return f"<script {rendered} async></script>"
