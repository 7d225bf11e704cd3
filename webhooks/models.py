"""Webhook endpoints and their deliveries.

An `Endpoint` is a customer's URL subscribed to some event types. For every event of an
organization (`organizations.models.Event`, the outbox, written in the same transaction as
the change), each active endpoint subscribed to its type gets one `Delivery` row, written in
that same transaction too. The worker sends deliveries (at least once) and records each try
as a `DeliveryAttempt`.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.expressions import RawSQL

from core.tenancy import TenantModel

POSITION_SEQUENCE = "webhooks_delivery_position"


class Endpoint(TenantModel):
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=500, blank=True, default="")
    events = ArrayField(models.CharField(max_length=64))
    is_active = models.BooleanField(default=True)
    # HMAC needs the secret itself: encrypted at rest (purpose "webhook signing secret"),
    # shown once on create and rotate, never returned or logged afterwards.
    secret_encrypted = models.TextField()
    secret_hint = models.CharField(max_length=8)  # last 4 characters, to tell secrets apart
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "is_active"], name="webhook_endpoint_org_active")]

    def __str__(self) -> str:
        return self.url


class Delivery(TenantModel):
    """One event for one endpoint. Its id is the `X-SupportAI-Delivery` header, the same on
    every retry. `ordering_key` (the conversation, or the source) orders deliveries of one
    endpoint: a later one waits while an earlier one with the same key is still pending."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey("organizations.Event", on_delete=models.CASCADE, related_name="+")
    event_type = models.CharField(max_length=64)
    ordering_key = models.CharField(max_length=100, blank=True, default="")
    # Emission order across processes (a Postgres sequence), for `ordering_key`.
    position = models.BigIntegerField(
        db_default=RawSQL(f"nextval('{POSITION_SEQUENCE}')", []),  # noqa: S611 (a constant)
        editable=False,
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker sending it holds it until then (a worker that died lets it go by itself).
    locked_until = models.DateTimeField(null=True, blank=True)
    give_up_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True, default="")
    error = models.CharField(max_length=500, blank=True, default="")
    resend_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-position"]
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_endpoint"),
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=models.Q(status="pending"),
            ),
            models.Index(
                fields=["endpoint", "ordering_key", "position"],
                name="webhook_delivery_order",
                condition=models.Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint_id} ({self.status})"


class DeliveryAttempt(TenantModel):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.TextField(blank=True, default="")
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="unique_webhook_delivery_attempt")
        ]
