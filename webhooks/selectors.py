"""Webhook reads."""

from __future__ import annotations

from django.db.models import QuerySet

from organizations.models import Organization
from webhooks.models import Delivery, DeliveryAttempt, Endpoint


def endpoint_list(*, organization: Organization) -> QuerySet[Endpoint]:
    return Endpoint.objects.for_organization(organization).order_by("-created_at", "-id")


def endpoint_get(*, organization: Organization, endpoint_id) -> Endpoint | None:
    """The endpoint, or None when it does not exist or belongs to another organization."""
    return Endpoint.objects.for_organization(organization).filter(pk=endpoint_id).first()


def delivery_list(*, endpoint: Endpoint, status: str | None = None) -> QuerySet[Delivery]:
    deliveries = Delivery.objects.for_organization(endpoint.organization_id).filter(endpoint=endpoint)
    if status:
        deliveries = deliveries.filter(status=status)
    return deliveries.select_related("event").order_by("-created_at", "-id")


def delivery_get(*, endpoint: Endpoint, delivery_id) -> Delivery | None:
    return (
        Delivery.objects.for_organization(endpoint.organization_id)
        .filter(endpoint=endpoint, pk=delivery_id)
        .select_related("event", "endpoint")
        .first()
    )


def delivery_attempts(*, delivery: Delivery) -> QuerySet[DeliveryAttempt]:
    return DeliveryAttempt.objects.for_organization(delivery.organization_id).filter(delivery=delivery)
