"""Webhooks: endpoints (create, change, rotate, delete), the delivery rows every event gets,
and sending them.

Guarantees (docs/integrations.md says the same to customers):
- **At least once.** Each event gets one delivery row per subscribed active endpoint, in the
  transaction that emitted it; the row stays `pending` until a 2xx answer (`delivered`) or
  until WEBHOOK_RETRY_WINDOW after the event (`failed`, "given up"). The enqueue after commit
  may be lost (a worker or broker restart): the beat sweep sends every due row anyway.
  A worker that dies while sending lets go of the row when its lease ends; it is sent again.
- **In order per conversation (and per knowledge source), per endpoint.** A delivery whose
  `ordering_key` has an earlier delivery still pending on the same endpoint waits for it
  to be delivered or given up. Unrelated conversations do not wait for each other.
- **Same `X-SupportAI-Delivery` on every retry**; a manual resend is a new delivery of the
  same event (same body `id`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from core import crypto, fetcher
from core.errors import ValidationFailed
from organizations import audit as audit_log
from organizations.models import Event, Organization
from organizations.selectors import admin_mail_recipients
from organizations.services import EVENT_TYPES, EventWrite
from webhooks.models import Delivery, DeliveryAttempt, Endpoint

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
SECRET_PURPOSE = "webhook signing secret"
USER_AGENT = "SupportAI-Webhooks/1.0"
EXCERPT_CHARS = 1000
# Retries due sooner than this are enqueued with a countdown; later ones wait for the sweep
# (a long countdown on the Redis broker outlives its visibility timeout and runs twice).
COUNTDOWN_LIMIT = 60.0


# --- endpoints --------------------------------------------------------------------------------
def _url_clean(url) -> str:
    url = (url or "").strip() if isinstance(url, str) else ""
    if not url:
        raise ValidationFailed("url is required.", details={"url": ["This field is required."]})
    try:
        fetcher.url_check(url)
    except fetcher.UrlNotAllowed as error:
        raise ValidationFailed(f"URL not allowed: {error.reason}", details={"url": [error.reason]}) from None
    except fetcher.FetchFailed as error:
        raise ValidationFailed(str(error.message), details={"url": [str(error.message)]}) from None
    return url


def events_clean(events) -> list[str]:
    if not isinstance(events, list | tuple) or not events:
        raise ValidationFailed(
            "events must be a non-empty list of event types.",
            details={"events": [f"Choose one or more of: {', '.join(sorted(EVENT_TYPES))}."]},
        )
    unknown = [str(name)[:64] for name in events if not isinstance(name, str) or name not in EVENT_TYPES]
    if unknown:
        raise ValidationFailed(
            f"Unknown event type(s): {', '.join(unknown)}.",
            details={"events": [f"Unknown: {', '.join(unknown)}. Known: {', '.join(sorted(EVENT_TYPES))}."]},
        )
    return sorted(set(events))


def _active_clean(is_active) -> bool:
    if not isinstance(is_active, bool):
        raise ValidationFailed(
            "is_active must be true or false.", details={"is_active": ["Must be a boolean."]}
        )
    return is_active


def _description_clean(description) -> str:
    if description is None:
        return ""
    if not isinstance(description, str):
        raise ValidationFailed(
            "description must be a string.", details={"description": ["Must be a string."]}
        )
    if len(description) > 500:
        raise ValidationFailed(
            "description is longer than 500 characters.",
            details={"description": ["Ensure this field has no more than 500 characters."]},
        )
    return description.strip()


def _secret_new() -> tuple[str, str]:
    """(plain secret, its encrypted form)."""
    plain = SECRET_PREFIX + secrets.token_urlsafe(32)
    return plain, crypto.encrypt(plain, purpose=SECRET_PURPOSE)


@transaction.atomic
def endpoint_create(
    *,
    organization: Organization,
    url: str,
    events: list[str],
    description: str = "",
    is_active: bool = True,
    created_by=None,
) -> tuple[Endpoint, str]:
    """A new endpoint; returns (endpoint, plain signing secret — shown this once). Every field's
    error is reported at once (a bad URL used to hide bad events until the next attempt)."""
    cleaned, errors, first = {}, {}, None
    for name, clean, value in (
        ("url", _url_clean, url),
        ("events", events_clean, events),
        ("description", _description_clean, description),
        ("is_active", _active_clean, is_active),
    ):
        try:
            cleaned[name] = clean(value)
        except ValidationFailed as error:
            first = first or error
            errors.update(error.details if isinstance(error.details, dict) else {name: [error.message]})
    if first is not None:
        raise ValidationFailed(first.message, details=errors)
    url, events, description, is_active = (
        cleaned["url"],
        cleaned["events"],
        cleaned["description"],
        cleaned["is_active"],
    )
    Organization.objects.select_for_update().filter(pk=organization.pk).first()  # count, then insert
    if Endpoint.objects.for_organization(organization).count() >= settings.WEBHOOK_MAX_ENDPOINTS:
        raise ValidationFailed(
            f"An organization can have at most {settings.WEBHOOK_MAX_ENDPOINTS} webhook endpoints.",
            details={"url": [f"At most {settings.WEBHOOK_MAX_ENDPOINTS} endpoints."]},
        )
    plain, encrypted = _secret_new()
    endpoint = Endpoint.objects.create(
        organization=organization,
        url=url,
        events=events,
        description=description,
        is_active=is_active,
        secret_encrypted=encrypted,
        secret_hint=plain[-4:],
        created_by=created_by,
    )
    return endpoint, plain


def endpoint_update(*, endpoint: Endpoint, **changes) -> Endpoint:
    """Change `url`, `events`, `description`, `is_active` (only those given). Re-enabling an
    endpoint (also one disabled after failures) resets its failure count and sends what is
    still pending for it."""
    fields = ["updated_at"]
    if "url" in changes:
        endpoint.url = _url_clean(changes["url"])
        fields.append("url")
    if "events" in changes:
        endpoint.events = events_clean(changes["events"])
        fields.append("events")
    if "description" in changes:
        endpoint.description = _description_clean(changes["description"])
        fields.append("description")
    enabled = False
    if "is_active" in changes:
        _active_clean(changes["is_active"])
        enabled = changes["is_active"] and not endpoint.is_active
        endpoint.is_active = changes["is_active"]
        fields.append("is_active")
        if enabled:
            endpoint.consecutive_failures = 0
            endpoint.disabled_at = None
            endpoint.disabled_reason = ""
            fields += ["consecutive_failures", "disabled_at", "disabled_reason"]
    with transaction.atomic():
        endpoint.save(update_fields=fields)
        if enabled:
            pending = Delivery.objects.for_organization(endpoint.organization_id).filter(
                endpoint=endpoint, status=Delivery.Status.PENDING
            )
            pending.update(next_attempt_at=timezone.now())
            transaction.on_commit(lambda: deliveries_sweep(endpoint_id=endpoint.pk, grace=0))
    return endpoint


def endpoint_audit_changes(changes: dict) -> dict:
    """`changes` as the audit log keeps them: an endpoint URL cut to its origin ("/…" standing
    for a path or query). Many receivers put their credential in the URL (Slack's and
    Discord's webhook URLs, a catch hook's path, a `?token=`), and the log is append-only: a URL
    rotated or deleted because it leaked would stay readable there for good."""
    url = changes.get("url")
    if not isinstance(url, str):
        return changes
    parts = urlsplit(url)
    kept = f"{parts.scheme}://{parts.netloc}/" + ("…" if parts.path.strip("/") or parts.query else "")
    return {**changes, "url": kept}


def endpoint_enable_audit(endpoint: Endpoint) -> dict | None:
    """Taken before an update: what the `webhook.enabled` audit event records (when and why the
    endpoint was disabled) if the update enables it again; None while it is active."""
    if endpoint.is_active:
        return None
    return {
        "is_active": True,
        "disabled_at": endpoint.disabled_at.isoformat() if endpoint.disabled_at else None,
        "disabled_reason": endpoint.disabled_reason,
    }


def delivery_resend_audit(*, delivery: Delivery, copy: Delivery) -> dict:
    """What the `webhook.delivery_resent` audit event records: the delivery sent again, the new
    one and its event (never the payload)."""
    return {
        "delivery_id": str(delivery.pk),
        "resend_id": str(copy.pk),
        "event_id": str(delivery.event_id),
        "event_type": delivery.event_type,
    }


def endpoint_secret_rotate(*, endpoint: Endpoint) -> tuple[Endpoint, str]:
    """A new signing secret (the old one stops signing at once); returns the plain one, once."""
    plain, encrypted = _secret_new()
    endpoint.secret_encrypted, endpoint.secret_hint = encrypted, plain[-4:]
    endpoint.save(update_fields=["secret_encrypted", "secret_hint", "updated_at"])
    return endpoint, plain


def endpoint_delete(*, endpoint: Endpoint) -> None:
    endpoint.delete()  # its deliveries and their attempts go with it


# --- events → deliveries -------------------------------------------------------------------------
def _ordering_key(event: Event) -> str:
    data = event.data or {}
    if data.get("conversation_id"):
        return f"conversation:{data['conversation_id']}"[:100]
    if data.get("source_id"):
        return f"source:{data['source_id']}"[:100]
    return ""


def event_deliveries_statement(*, event: Event) -> EventWrite | None:
    """The INSERT … SELECT of `event`'s deliveries, one pending delivery per active endpoint
    subscribed to `event.type` (RETURNING their ids), or None when none may be made.

    Events of the dashboard's playground (`data.playground`) are an operator's tests, not
    visitors: recorded, never delivered (a CRM must not file them as real conversations)."""
    if (event.data or {}).get("playground"):
        return None
    now = timezone.now()
    delivery, endpoint = Delivery._meta.db_table, Endpoint._meta.db_table
    # Table names from the models; every value is a parameter.
    statement = (
        f'INSERT INTO "{delivery}" (id, organization_id, created_at, endpoint_id, event_id, event_type, '  # noqa: S608
        "ordering_key, status, attempts, next_attempt_at, give_up_at, response_excerpt, error) "
        f"SELECT gen_random_uuid(), organization_id, %s, id, %s, %s, %s, %s, 0, %s, %s, '', '' "
        f'FROM "{endpoint}" WHERE organization_id = %s AND is_active AND events @> ARRAY[%s]::varchar[] '
        "RETURNING id"
    )
    params = [
        now,
        event.pk,
        event.type,
        _ordering_key(event),
        Delivery.Status.PENDING,
        now,
        now + dt.timedelta(seconds=settings.WEBHOOK_RETRY_WINDOW),
        event.organization_id,
        event.type,
    ]
    return EventWrite(sql=statement, params=params, done=_deliveries_made)


def _deliveries_made(delivery_ids: list) -> list:
    if delivery_ids:
        _enqueue_on_commit(delivery_ids)
    return delivery_ids


def event_deliveries_create(*, event: Event) -> list:
    """`event`'s deliveries, in the emitting transaction (organizations.services.event_emit
    calls this, see EVENT_SUBSCRIBERS); the worker is asked to send them once that
    transaction commits. One statement: every stored chat message pays for it, whether or
    not there are endpoints, so the chat's message store folds it into its own statement
    (`statement` below, see organizations.services.event_fold)."""
    write = event_deliveries_statement(event=event)
    if write is None:
        return []
    with connection.cursor() as cursor:
        cursor.execute(write.sql, write.params)
        delivery_ids = [row[0] for row in cursor.fetchall()]
    return write.done(delivery_ids)


event_deliveries_create.statement = event_deliveries_statement


def _enqueue_on_commit(delivery_ids: list, *, countdown: float | None = None) -> None:
    def send():
        from webhooks.tasks import delivery_send_task

        for delivery_id in delivery_ids:
            try:
                delivery_send_task.apply_async((str(delivery_id),), countdown=countdown)
            except Exception:  # the broker is down: the beat sweep sends it when it is back
                logger.warning("webhook delivery %s not enqueued; the sweep will send it", delivery_id)

    transaction.on_commit(send)


# --- sending ---------------------------------------------------------------------------------
def payload_body(*, event: Event, organization: Organization) -> bytes:
    """The JSON body: the same bytes on every attempt (the signature covers them)."""
    created = event.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {
            "id": str(event.pk),
            "type": event.type,
            "created_at": created,
            "organization": {"id": str(organization.pk), "name": organization.name},
            "data": event.data,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def signature_header(*, secret: str, body: bytes, timestamp: int) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def retry_delay(*, attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: exponential from WEBHOOK_RETRY_BASE_DELAY, capped
    at WEBHOOK_RETRY_MAX_DELAY, with jitter (a random 50-100 %) so retries do not bunch up."""
    exponential = settings.WEBHOOK_RETRY_BASE_DELAY * 2 ** max(0, attempts - 1)
    return min(exponential, settings.WEBHOOK_RETRY_MAX_DELAY) * random.uniform(0.5, 1.0)


def _predecessor_pending():
    """Exists: an earlier pending delivery with the same endpoint and ordering key."""
    return Exists(
        Delivery.objects.unscoped()
        .filter(
            endpoint_id=OuterRef("endpoint_id"),
            ordering_key=OuterRef("ordering_key"),
            status=Delivery.Status.PENDING,
            position__lt=OuterRef("position"),
        )
        .exclude(ordering_key="")
    )


def _claim(*, delivery_id) -> tuple[Delivery | None, str]:
    """Take the delivery for one attempt (a lease), or say why not."""
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            Delivery.objects.unscoped()
            .select_for_update(of=("self",), skip_locked=True)
            .select_related("endpoint", "event", "organization")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            return None, "busy_or_gone"
        if delivery.status != Delivery.Status.PENDING:
            return None, delivery.status
        if delivery.locked_until and delivery.locked_until > now:
            return None, "busy"
        if delivery.next_attempt_at and delivery.next_attempt_at > now + dt.timedelta(seconds=1):
            return None, "not_due"
        if now >= delivery.give_up_at:
            _finish(delivery=delivery, status=Delivery.Status.FAILED, error="Given up: retry window ended.")
            return None, "failed"
        if not delivery.endpoint.is_active:
            return None, "endpoint_inactive"
        if (
            delivery.ordering_key
            and Delivery.objects.unscoped()
            .filter(
                endpoint_id=delivery.endpoint_id,
                ordering_key=delivery.ordering_key,
                status=Delivery.Status.PENDING,
                position__lt=delivery.position,
            )
            .exists()
        ):
            return None, "waiting"
        delivery.locked_until = now + dt.timedelta(seconds=settings.WEBHOOK_TIMEOUT + 30)
        delivery.save(update_fields=["locked_until"])
        return delivery, "claimed"


def _finish(*, delivery: Delivery, status: str, error: str = "", also: tuple[str, ...] = ()) -> None:
    """Delivered or given up (inside a transaction): the next one in its order may go.
    `also` names more fields of `delivery` to save in the same UPDATE."""
    delivery.status = status
    delivery.next_attempt_at = None
    delivery.locked_until = None
    if error:
        delivery.error = error[:500]
    if status == Delivery.Status.DELIVERED:
        delivery.delivered_at = timezone.now()
    delivery.save(
        update_fields=[
            "status",
            "next_attempt_at",
            "locked_until",
            "error",
            "delivered_at",
            "response_status",
            *also,
        ]
    )
    if delivery.ordering_key:
        successor = (
            Delivery.objects.unscoped()
            .filter(
                endpoint_id=delivery.endpoint_id,
                ordering_key=delivery.ordering_key,
                status=Delivery.Status.PENDING,
                position__gt=delivery.position,
            )
            .order_by("position")
            .values_list("pk", flat=True)
            .first()
        )
        if successor:
            _enqueue_on_commit([successor])


def delivery_attempt(*, delivery_id) -> str:
    """Send one delivery once (the worker's task calls this); returns what happened:
    delivered, retrying, failed, or why nothing was sent (waiting, not_due, busy, …)."""
    delivery, outcome = _claim(delivery_id=delivery_id)
    if delivery is None:
        return outcome
    endpoint = delivery.endpoint
    body = payload_body(event=delivery.event, organization=delivery.organization)
    secret = crypto.decrypt(endpoint.secret_encrypted, purpose=SECRET_PURPOSE)
    status_code, excerpt, error = None, "", ""
    started = time.perf_counter()
    if secret is None:
        error = "The signing secret cannot be read (SECRET_KEY changed?): rotate it."
    else:
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-SupportAI-Event": delivery.event_type,
            "X-SupportAI-Delivery": str(delivery.pk),
            "X-SupportAI-Signature": signature_header(secret=secret, body=body, timestamp=timestamp),
        }
        try:
            response = fetcher.post(
                endpoint.url,
                body=body,
                headers=headers,
                max_bytes=settings.WEBHOOK_RESPONSE_MAX_BYTES,
                total_timeout=settings.WEBHOOK_TIMEOUT,
                connect_timeout=settings.WEBHOOK_CONNECT_TIMEOUT,
            )
            status_code = response.status
            excerpt = response.text()[:EXCERPT_CHARS]
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except fetcher.UrlNotAllowed as refusal:
            error = f"Not sent: {refusal.reason}"
        except (fetcher.FetchTimeout, fetcher.FetchFailed) as failure:
            error = str(failure.message)
        except Exception as failure:  # any other failure is an attempt that failed, not a crash
            error = f"Not sent ({failure.__class__.__name__})."
    duration_ms = int((time.perf_counter() - started) * 1000)
    return _attempt_record(
        delivery=delivery, status_code=status_code, excerpt=excerpt, error=error, duration_ms=duration_ms
    )


def _attempt_record(*, delivery: Delivery, status_code, excerpt: str, error: str, duration_ms: int) -> str:
    delivered = not error
    now = timezone.now()
    with transaction.atomic():
        delivery.attempts += 1
        DeliveryAttempt.objects.create(
            organization_id=delivery.organization_id,
            delivery=delivery,
            number=delivery.attempts,
            response_status=status_code,
            duration_ms=duration_ms,
            response_excerpt=excerpt,
            error=error[:500],
        )
        delivery.response_status = status_code
        delivery.duration_ms = duration_ms
        delivery.response_excerpt = excerpt
        delivery.error = error[:500]
        recorded = ("attempts", "duration_ms", "response_excerpt")
        endpoints = Endpoint.objects.unscoped().filter(pk=delivery.endpoint_id)
        if delivered:
            endpoints.filter(consecutive_failures__gt=0).update(consecutive_failures=0)
            _finish(delivery=delivery, status=Delivery.Status.DELIVERED, also=recorded)
            return "delivered"
        endpoints.update(consecutive_failures=F("consecutive_failures") + 1)
        _endpoint_disable_if_failing(endpoint_id=delivery.endpoint_id)
        delay = retry_delay(attempts=delivery.attempts)
        retry_at = now + dt.timedelta(seconds=delay)
        if retry_at >= delivery.give_up_at:
            _finish(
                delivery=delivery,
                status=Delivery.Status.FAILED,
                error=f"Given up after {delivery.attempts} attempts: {error}",
                also=recorded,
            )
            return "failed"
        delivery.next_attempt_at, delivery.locked_until = retry_at, None
        delivery.save(
            update_fields=["next_attempt_at", "locked_until", "error", "response_status", *recorded]
        )
        if delay <= COUNTDOWN_LIMIT:
            _enqueue_on_commit([delivery.pk], countdown=delay)
        return "retrying"


def _endpoint_disable_if_failing(*, endpoint_id) -> None:
    threshold = settings.WEBHOOK_DISABLE_AFTER_FAILURES
    with transaction.atomic():
        disabled = (
            Endpoint.objects.unscoped()
            .filter(pk=endpoint_id, is_active=True, consecutive_failures__gte=threshold)
            .update(
                is_active=False,
                disabled_at=timezone.now(),
                disabled_reason=f"Disabled after {threshold} failed deliveries in a row.",
                updated_at=timezone.now(),
            )
        )
        if disabled:
            # In the audit log as the system's doing: the endpoint and why, never its URL (a
            # receiver's URL may carry a token in its path or query).
            endpoint = Endpoint.objects.unscoped().select_related("organization").get(pk=endpoint_id)
            audit_log.audit_record(
                organization=endpoint.organization,
                action="webhook.disabled",
                actor=audit_log.SYSTEM,
                target_type="endpoint",
                target_id=endpoint.pk,
                changes={
                    "is_active": False,
                    "disabled_reason": endpoint.disabled_reason,
                    "consecutive_failures": endpoint.consecutive_failures,
                },
            )
    if disabled:
        logger.warning("webhook endpoint %s disabled after %s failures in a row", endpoint_id, threshold)

        def mail():
            from webhooks.tasks import endpoint_disabled_mail_task

            endpoint_disabled_mail_task.delay(str(endpoint_id))

        transaction.on_commit(mail)


def endpoint_disabled_mail(*, endpoint_id: str) -> int:
    """Tell the organization's owners and admins that an endpoint was disabled; returns how
    many were emailed."""
    from django.core.mail import send_mail

    endpoint = Endpoint.objects.unscoped().select_related("organization").filter(pk=endpoint_id).first()
    if endpoint is None or endpoint.is_active:
        return 0
    recipients = admin_mail_recipients(organization=endpoint.organization)
    if not recipients:
        return 0
    last = (
        Delivery.objects.for_organization(endpoint.organization_id)
        .filter(endpoint=endpoint)
        .exclude(error="")
        .order_by("-created_at")
        .values_list("error", flat=True)
        .first()
    )
    link = f"{settings.SITE_URL.rstrip('/')}/settings/webhooks/{endpoint.pk}/"
    send_mail(
        subject=f"Webhook endpoint disabled: {endpoint.url[:80]}",
        message=(
            f"SupportAI stopped sending webhooks to {endpoint.url} for {endpoint.organization.name}: "
            f"{endpoint.disabled_reason or 'too many failed deliveries.'}\n"
            f"Last error: {last or 'unknown'}\n\n"
            f"Deliveries not yet sent are kept (for up to 24 hours after their event). Fix the "
            f"receiver, then enable the endpoint again: {link}\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )
    return len(recipients)


def deliveries_sweep(*, endpoint_id=None, limit: int = 500, grace: float | None = None) -> int:
    """Give up deliveries past their window, and enqueue the ones that are due and first in
    their order (a retry too far ahead for a countdown, or one whose enqueue was lost);
    returns how many were enqueued.

    Only deliveries due for `grace` seconds (WEBHOOK_SWEEP_GRACE) are taken, and taking one
    moves its `next_attempt_at` to now: while the worker has a backlog, the next sweeps do not
    enqueue the same deliveries again (each would be a no-op claim, but thousands of them)."""
    now = timezone.now()
    grace = settings.WEBHOOK_SWEEP_GRACE if grace is None else grace
    pending = Delivery.objects.unscoped().filter(status=Delivery.Status.PENDING)
    if endpoint_id is not None:
        pending = pending.filter(endpoint_id=endpoint_id)
    unlocked = Q(locked_until__isnull=True) | Q(locked_until__lte=now)  # not being sent right now
    for delivery in pending.filter(unlocked, give_up_at__lte=now).order_by("position")[:limit]:
        with transaction.atomic():
            delivery = (
                Delivery.objects.unscoped().select_for_update(skip_locked=True).filter(pk=delivery.pk).first()
            )
            if delivery is not None and delivery.status == Delivery.Status.PENDING:
                _finish(
                    delivery=delivery, status=Delivery.Status.FAILED, error="Given up: retry window ended."
                )
    due = list(
        pending.filter(
            unlocked,
            next_attempt_at__lte=now - dt.timedelta(seconds=grace),
            endpoint__is_active=True,
        )
        .exclude(_predecessor_pending())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    if due:
        with transaction.atomic():
            Delivery.objects.unscoped().filter(pk__in=due, status=Delivery.Status.PENDING).update(
                next_attempt_at=now
            )
            _enqueue_on_commit(due)
    return len(due)


def delivery_resend(*, delivery: Delivery) -> Delivery:
    """Send the delivery's event to its endpoint again, as a new delivery (same event id)."""
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        raise ValidationFailed(
            "This endpoint is disabled: enable it before resending.",
            details={"is_active": ["The endpoint is disabled."]},
        )
    now = timezone.now()
    with transaction.atomic():
        copy = Delivery.objects.create(
            organization_id=delivery.organization_id,
            endpoint=endpoint,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            ordering_key=delivery.ordering_key,
            next_attempt_at=now,
            give_up_at=now + dt.timedelta(seconds=settings.WEBHOOK_RETRY_WINDOW),
            resend_of=delivery,
        )
        _enqueue_on_commit([copy.pk])
    return Delivery.objects.for_organization(copy.organization_id).select_related("event").get(pk=copy.pk)
