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


def _email_pattern(value: str) -> re.Pattern | None:
    """For an erased email address: the address inside longer text ("Ada <ada@x.example>"),
    delimited so that a longer address does not match. None for anything else."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    try:
        validate_email(value)
    except ValidationError:
        return None
    return re.compile(r"(?<![\w.+\-])" + re.escape(value) + r"(?![\w\-]|\.\w)")


def _names(value, wanted: set[str], emails: list[re.Pattern]) -> bool:
    """Whether a logged value names an erased identifier: a string equal to one (any case,
    surrounding spaces aside) or holding an erased email address; lists and dicts by their
    items. Never a substring: erasing "e" must not blank every event that has an "e" in it."""
    if isinstance(value, str):
        text = value.strip().lower()
        return text in wanted or any(pattern.search(text) for pattern in emails)
    if isinstance(value, dict):
        return any(_names(item, wanted, emails) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_names(item, wanted, emails) for item in value)
    return False


@transaction.atomic
def audit_scrub(*, organization: Organization, values: list[str]) -> int:
    """Erasure: blank personal data (`values`: an erased identifier, an email) wherever an
    event names it (actor, user agent, target id, changes). The one path allowed through the
    append-only trigger, for this transaction only.

    A value is named only whole (`_names`), and the actor of an event is blanked only when it
    is a person who is no longer a member here: API keys and the system are not personal data,
    and a current member's actions stay attributed (a member who leaves is removed first)."""
    from organizations.models import Membership

    wanted = {value.strip().lower() for value in values if value and value.strip()}
    if not wanted:
        return 0
    emails = [pattern for pattern in map(_email_pattern, sorted(wanted)) if pattern is not None]
    members = {
        email.lower()
        for email in Membership.objects.for_organization(organization).values_list("user__email", flat=True)
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('supportai.audit_scrub', 'on', true)")
    scrubbed = 0
    for event in AuditEvent.objects.for_organization(organization).iterator():
        actor = event.actor
        if (
            event.actor_type == "user"
            and actor.strip().lower() not in members
            and _names(actor, wanted, emails)
        ):
            actor = "[erased]"
        user_agent = "[erased]" if _names(event.user_agent, wanted, emails) else event.user_agent
        target_id = "[erased]" if _names(event.target_id, wanted, emails) else event.target_id
        changes = {"erased": True} if _names(event.changes, wanted, emails) else event.changes
        if (actor, user_agent, target_id, changes) == (
            event.actor,
            event.user_agent,
            event.target_id,
            event.changes,
        ):
            continue
        # Through the base manager's queryset: AuditEventQuerySet.update refuses on purpose.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE organizations_auditevent SET actor = %s, user_agent = %s, target_id = %s, changes = %s::jsonb "
                "WHERE id = %s",
                [actor, user_agent, target_id, _json(changes), event.pk],
            )
        scrubbed += 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('supportai.audit_scrub', 'off', true)")
    return scrubbed


def _json(value) -> str:
    return json.dumps(value)
