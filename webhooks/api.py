"""`/api/v1/webhooks/…` — an owner's or admin's API key manages the organization's endpoints
and reads their delivery logs. Another organization's ids answer 404, like unknown ones."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response

from core.api.pagination import CursorPagination
from core.errors import NotFound, ValidationFailed
from organizations.api_base import OrganizationGenericAPIView
from organizations.selectors import api_key_may_administer
from webhooks import selectors, services
from webhooks.models import Delivery, Endpoint
from webhooks.serializers import (
    DeliveryDetailSerializer,
    DeliverySerializer,
    EndpointSerializer,
    EndpointWithSecretSerializer,
    EndpointWriteSerializer,
)

WRITABLE = ("url", "events", "description", "is_active")


class WebhookApiView(OrganizationGenericAPIView):
    model = Endpoint
    serializer_class = EndpointSerializer

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not api_key_may_administer(api_key=self.credential.api_key):
            raise exceptions.PermissionDenied(
                "Only an API key made by an owner or admin may manage webhooks."
            )

    def body(self) -> dict:
        if not isinstance(self.request.data, dict):
            raise ValidationFailed("The body must be a JSON object.")
        return {name: self.request.data[name] for name in WRITABLE if name in self.request.data}

    def endpoint(self, pk) -> Endpoint:
        endpoint = selectors.endpoint_get(organization=self.organization, endpoint_id=pk)
        if endpoint is None:
            raise NotFound("Webhook not found.")
        return endpoint


def _with_secret(endpoint: Endpoint, secret: str) -> dict:
    endpoint.secret = secret
    return EndpointWithSecretSerializer(endpoint).data


def _no_store(response: Response) -> Response:
    response["Cache-Control"] = "no-store"  # the only answer the secret is ever in
    return response


class WebhookListCreateApi(WebhookApiView):
    @extend_schema(operation_id="webhooks_list", responses=EndpointSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(selectors.endpoint_list(organization=self.organization))
        return self.get_paginated_response(EndpointSerializer(page, many=True).data)

    @extend_schema(
        operation_id="webhooks_create",
        request=EndpointWriteSerializer,
        responses={201: EndpointWithSecretSerializer},
        description="The `secret` (for verifying `X-SupportAI-Signature`) is in this answer only.",
    )
    def post(self, request):
        body = self.body()
        endpoint, secret = services.endpoint_create(
            organization=self.organization,
            url=body.get("url"),
            events=body.get("events"),
            description=body.get("description", ""),
            is_active=body.get("is_active", True),
        )
        self.audit(
            "webhook.created",
            target=endpoint,
            changes=services.endpoint_audit_changes({"url": endpoint.url, "events": endpoint.events}),
        )
        return _no_store(Response(_with_secret(endpoint, secret), status=status.HTTP_201_CREATED))


class WebhookDetailApi(WebhookApiView):
    @extend_schema(operation_id="webhooks_retrieve", responses=EndpointSerializer)
    def get(self, request, pk):
        return Response(EndpointSerializer(self.endpoint(pk)).data)

    @extend_schema(
        operation_id="webhooks_partial_update",
        request=EndpointWriteSerializer(partial=True),
        responses=EndpointSerializer,
    )
    def patch(self, request, pk):
        endpoint = self.endpoint(pk)
        enabled = services.endpoint_enable_audit(endpoint)
        changes = self.body()
        endpoint = services.endpoint_update(endpoint=endpoint, **changes)
        self.audit("webhook.updated", target=endpoint, changes=services.endpoint_audit_changes(changes))
        if enabled is not None and endpoint.is_active:
            self.audit("webhook.enabled", target=endpoint, changes=enabled)
        return Response(EndpointSerializer(endpoint).data)

    @extend_schema(operation_id="webhooks_destroy", responses={200: None})
    def delete(self, request, pk):
        endpoint = self.endpoint(pk)
        self.audit(
            "webhook.deleted", target=endpoint, changes=services.endpoint_audit_changes({"url": endpoint.url})
        )
        services.endpoint_delete(endpoint=endpoint)
        return Response(None, status=status.HTTP_200_OK)


class WebhookSecretRotateApi(WebhookApiView):
    @extend_schema(
        operation_id="webhooks_rotate_secret",
        request=None,
        responses=EndpointWithSecretSerializer,
        description="A new signing secret, in this answer only; the old one stops signing at once.",
    )
    def post(self, request, pk):
        endpoint, secret = services.endpoint_secret_rotate(endpoint=self.endpoint(pk))
        self.audit("webhook.secret_rotated", target=endpoint)
        return _no_store(Response(_with_secret(endpoint, secret)))


class WebhookDeliveryListApi(WebhookApiView):
    """Newest first, cursor-paged; `status` = pending | delivered | failed."""

    model = Delivery
    pagination_class = CursorPagination

    @extend_schema(
        operation_id="webhooks_deliveries_list",
        parameters=[
            OpenApiParameter("status", str, enum=[choice for choice, _ in Delivery.Status.choices]),
            OpenApiParameter("cursor", str),
            OpenApiParameter("page_size", int),
        ],
        responses=DeliverySerializer(many=True),
    )
    def get(self, request, pk):
        endpoint = self.endpoint(pk)
        wanted = request.query_params.get("status") or None
        if wanted and wanted not in Delivery.Status.values:
            raise ValidationFailed(
                "status must be pending, delivered or failed.",
                details={"status": [f"One of: {', '.join(Delivery.Status.values)}."]},
            )
        page = self.paginate_queryset(selectors.delivery_list(endpoint=endpoint, status=wanted))
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)


class DeliveryApiView(WebhookApiView):
    model = Delivery

    def delivery(self, pk, delivery_id) -> Delivery:
        delivery = selectors.delivery_get(endpoint=self.endpoint(pk), delivery_id=delivery_id)
        if delivery is None:
            raise NotFound("Delivery not found.")
        return delivery


class WebhookDeliveryDetailApi(DeliveryApiView):
    @extend_schema(operation_id="webhooks_deliveries_retrieve", responses=DeliveryDetailSerializer)
    def get(self, request, pk, delivery_id):
        return Response(DeliveryDetailSerializer(self.delivery(pk, delivery_id)).data)


class WebhookDeliveryResendApi(DeliveryApiView):
    @extend_schema(
        operation_id="webhooks_deliveries_resend",
        request=None,
        responses={202: DeliverySerializer},
        description="Send the delivery's event again, as a new delivery (same event `id` in the body).",
    )
    def post(self, request, pk, delivery_id):
        delivery = self.delivery(pk, delivery_id)
        copy = services.delivery_resend(delivery=delivery)
        self.audit(
            "webhook.delivery_resent",
            target=delivery.endpoint,
            changes=services.delivery_resend_audit(delivery=delivery, copy=copy),
        )
        return Response(DeliverySerializer(copy).data, status=status.HTTP_202_ACCEPTED)
