"""The audit log: one function records every account-changing action (`audit_record`), one
reads them (`audit_event_list`), and erasure scrubbing is the only thing that changes a row.

What a record may hold is decided here, not by callers: `changes` keeps field names and short
values, and drops anything whose name says secret, token, password, hash, key material or
message text, so a careless caller cannot put one in the log.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import re
from dataclasses import dataclass

from django.db import connection, transaction

from organizations.models import AuditEvent, Organization

logger = logging.getLogger(__name__)

_REDACTED_FIELD = re.compile(
    r"(^|_)(secret|token|password|hash|content|message|text|answer|question|comment|instructions)s?($|_)",
    re.I,
)
_MAX_VALUE = 200
_MAX_FIELDS = 30


@dataclass(frozen=True)
class AuditActor:
    """Who acted and from where: built by the API/dashboard layer from its request."""

    name: str = ""  # a user's email, or "api_key:<name>", or "system"
    kind: str = "system"  # user | api_key | system
    ip: str | None = None
    user_agent: str = ""


SYSTEM = AuditActor(name="system", kind="system")


def actor_from_request(request, *, user=None) -> AuditActor:
    """For the API and dashboard layers: who is calling (an API key by name, a signed-in
    user by email, or `user` for a sign-in attempt) and from which address and agent."""
    from organizations.budgets import client_ip  # the same client address the limits use

    ip = client_ip(request)
    try:
        ip = str(ipaddress.ip_address(ip))
    except ValueError:
        ip = None
    user_agent = request.META.get("HTTP_USER_AGENT", "")[:300]
    credential = getattr(request, "auth", None)
    api_key = getattr(credential, "api_key", None)
    if api_key is not None:
        return AuditActor(name=f"api_key:{api_key.name}", kind="api_key", ip=ip, user_agent=user_agent)
    user = user or getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False) and getattr(user, "email", None):
        return AuditActor(name=user.email, kind="user", ip=ip, user_agent=user_agent)
    if isinstance(user, str):
        return AuditActor(name=user, kind="user", ip=ip, user_agent=user_agent)
    return AuditActor(name="anonymous", kind="system", ip=ip, user_agent=user_agent)


def _value_clean(value):
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_value_clean(item) for item in list(value)[:20]]
    if isinstance(value, dict):
        return changes_clean(value)
    return str(value)[:_MAX_VALUE]


def changes_clean(changes: dict | None) -> dict:
    cleaned = {}
    for field, value in list((changes or {}).items())[:_MAX_FIELDS]:
        field = str(field)[:64]
        # A count of messages is fine; their text (or any secret) never is.
        sensitive = _REDACTED_FIELD.search(field) and not isinstance(value, bool | int | float)
        cleaned[field] = "[redacted]" if sensitive else _value_clean(value)
    return cleaned


def audit_record(
    *,
    organization: Organization,
    action: str,
    actor: AuditActor = SYSTEM,
    target_type: str = "",
    target_id="",
    changes: dict | None = None,
) -> AuditEvent:
    """Append one event. Never raises for a bad `changes` value; a failure to write is logged
    and re-raised inside the caller's transaction, so an action is never left unaudited."""
    return AuditEvent.objects.create(
        organization=organization,
        action=action[:64],
        actor=(actor.name or "")[:255],
        actor_type=actor.kind,
        ip=actor.ip or None,
        user_agent=(actor.user_agent or "")[:300],
        target_type=target_type[:64],
        target_id=str(target_id or "")[:64],
        changes=changes_clean(changes),
    )


def audit_request(
    *,
    request,
    organization: Organization,
    action: str,
    target=None,
    target_type: str = "",
    changes: dict | None = None,
) -> AuditEvent:
    """An account-changing action of the caller of `request` (an API key, a signed-in
    operator): what the API's and the dashboard's `audit()` record. The target is `target`'s
    model name and primary key unless `target_type` says otherwise."""
    return audit_record(
        organization=organization,
        action=action,
        actor=actor_from_request(request),
        target_type=target_type or (target._meta.model_name if target is not None else ""),
        target_id=getattr(target, "pk", "") or "",
        changes=changes,
    )


def audit_record_for_user(*, user, action: str, actor: AuditActor, changes: dict | None = None) -> int:
    """Account events (sign-in, password reset) belong to a person, not one organization:
    one event in each organization they are a member of."""
    from organizations.models import Membership

    organization_ids = Membership.all_organizations.filter(user=user).values_list(
        "organization_id", flat=True
    )
    count = 0
    for organization in Organization.objects.filter(pk__in=list(organization_ids)):
        audit_record(
            organization=organization,
            action=action,
            actor=actor,
            target_type="user",
            target_id=user.pk,
            changes=changes,
        )
        count += 1
    return count


def model_changes(instance, fields: dict) -> dict:
    """{field: [old, new]} for the fields whose value differs on `instance` (before saving)."""
    diff = {}
    for field, new in fields.items():
        old = getattr(instance, field, None)
        if old != new:
            diff[field] = [_value_clean(old), _value_clean(new)]
    return diff


def audit_event_list(
    *, organization: Organization, action: str | None = None, actor: str | None = None, since=None, until=None
):
    events = AuditEvent.objects.for_organization(organization)
    if action:
        events = (
            events.filter(action=action) if "." in action else events.filter(action__startswith=action + ".")
        )
    if actor:
        events = events.filter(actor__icontains=actor)
    if since:
        events = events.filter(created_at__gte=since)
    if until:
        events = events.filter(created_at__lt=until if isinstance(until, dt.datetime) else until)
    return events.order_by("-created_at", "-id")


@transaction.atomic
def audit_scrub(*, organization: Organization, values: list[str]) -> int:
    """Erasure: blank personal data (`values`: an erased identifier, an email) wherever it
    appears in this organization's events (actor, user agent, target id, changes). The one
    path allowed through the append-only trigger, for this transaction only."""
    values = [value for value in values if value]
    if not values:
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('supportai.audit_scrub', 'on', true)")
    scrubbed = 0
    for event in AuditEvent.objects.for_organization(organization).iterator():
        fields = {
            "actor": event.actor,
            "user_agent": event.user_agent,
            "target_id": event.target_id,
        }
        text_of_changes = str(event.changes)
        hit = any(value.lower() in text_of_changes.lower() for value in values) or any(
            value.lower() in (text or "").lower() for text in fields.values() for value in values
        )
        if not hit:
            continue
        updates = {
            name: ("[erased]" if any(v.lower() in (text or "").lower() for v in values) else text)
            for name, text in fields.items()
        }
        changes = (
            {"erased": True} if any(v.lower() in text_of_changes.lower() for v in values) else event.changes
        )
        # Through the base manager's queryset: AuditEventQuerySet.update refuses on purpose.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE organizations_auditevent SET actor = %s, user_agent = %s, target_id = %s, changes = %s::jsonb "
                "WHERE id = %s",
                [updates["actor"], updates["user_agent"], updates["target_id"], _json(changes), event.pk],
            )
        scrubbed += 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('supportai.audit_scrub', 'off', true)")
    return scrubbed


def _json(value) -> str:
    return json.dumps(value)
