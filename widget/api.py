from __future__ import annotations

import math

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.envelope import error_body
from core.api.ratelimit import budgets_hit, rate_limit_state_set
from core.api.renderers import PlainJSONRenderer
from core.cache_guard import CacheUnavailable, cache_call
from core.rate_counters import window_count_release
from organizations import audit as audit_log
from organizations import budgets
from organizations import selectors as organization_selectors
from organizations.api_base import OrganizationAPIView, OrganizationGenericAPIView
from organizations.selectors import api_key_widget_facing
from widget import selectors, services
from widget.middleware import CORS_WIDGET_TOKEN_MINT, CORS_WIDGET_VISITOR
from widget.models import Widget
from widget.origins import origin_from_header
from widget.serializers import (
    WidgetPublicConfigSerializer,
    WidgetSerializer,
    WidgetTokenRequestSerializer,
    WidgetTokenSerializer,
    WidgetWriteSerializer,
)


def _base_url(request) -> str:
    # Never the request's Host: a forged one would become our "own origin" (always allowed
    # to mint tokens) and the URL in the embed snippet.
    return settings.SITE_URL


class _WidgetSerializing:
    def serialize(self, widgets, *, many: bool = False):
        api_key = api_key_widget_facing(organization=self.organization)
        items = widgets if many else [widgets]
        snippets = {
            widget.pk: selectors.widget_embed_snippet(
                widget=widget, base_url=_base_url(self.request), client_id=api_key.client_id
            )
            for widget in items
            if api_key is not None
        }
        return WidgetSerializer(widgets, many=many, context={"snippets": snippets}).data


def _validated_write(request, *, partial: bool) -> dict:
    serializer = WidgetWriteSerializer(data=request.data, partial=partial)
    serializer.is_valid(raise_exception=True)
    # Services validate the raw values (colours, origins, options) with one set of rules.
    # A field the client did not send (a serializer default) or a form/multipart body
    # (QueryDict: one string per key) keeps its validated value.
    raw = request.data if isinstance(request.data, dict) and not hasattr(request.data, "getlist") else {}
    return {
        name: (str(value) if name == "assistant_id" else raw.get(name, value))
        for name, value in serializer.validated_data.items()
    }


class WidgetListCreateApi(_WidgetSerializing, OrganizationGenericAPIView):
    """Widget configurations of the organization (API key only)."""

    model = Widget
    serializer_class = WidgetSerializer

    @extend_schema(operation_id="widgets_list", responses=WidgetSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(selectors.widget_list(organization=self.organization))
        return self.get_paginated_response(self.serialize(page, many=True))

    @extend_schema(
        operation_id="widgets_create", request=WidgetWriteSerializer, responses={201: WidgetSerializer}
    )
    def post(self, request):
        fields = _validated_write(request, partial=False)
        widget = services.widget_create(organization=self.organization, **fields)
        self.audit("widget.created", target=widget, changes={"title": widget.title})
        return Response(self.serialize(widget), status=status.HTTP_201_CREATED)


class WidgetDetailApi(_WidgetSerializing, OrganizationGenericAPIView):
    model = Widget
    serializer_class = WidgetSerializer

    def _widget(self, pk) -> Widget:
        return selectors.widget_get(organization=self.organization, widget_id=pk)

    @extend_schema(operation_id="widgets_retrieve", responses=WidgetSerializer)
    def get(self, request, pk):
        return Response(self.serialize(self._widget(pk)))

    @extend_schema(
        operation_id="widgets_partial_update", request=WidgetWriteSerializer, responses=WidgetSerializer
    )
    def patch(self, request, pk):
        widget = self._widget(pk)
        fields = _validated_write(request, partial=True)
        changes = audit_log.model_changes(widget, {k: v for k, v in fields.items() if k != "assistant_id"})
        widget = services.widget_update(widget=widget, **fields)
        self.audit("widget.updated", target=widget, changes=changes)
        return Response(self.serialize(widget))

    @extend_schema(operation_id="widgets_update", request=WidgetWriteSerializer, responses=WidgetSerializer)
    def put(self, request, pk):
        return self.patch(request, pk)

    @extend_schema(operation_id="widgets_destroy", responses={200: None})
    def delete(self, request, pk):
        widget = self._widget(pk)
        services.widget_delete(widget=widget)
        self.audit("widget.deleted", target_type="widget", changes={"id": str(pk), "title": widget.title})
        return Response(None, status=status.HTTP_200_OK)


class WidgetConfigApi(OrganizationAPIView):
    """A widget's public configuration: readable with a widget token of the same organization."""

    allow_widget_token = True
    cors = CORS_WIDGET_VISITOR
    serializer_class = WidgetPublicConfigSerializer

    @extend_schema(operation_id="widgets_config", responses=WidgetPublicConfigSerializer)
    def get(self, request, pk):
        widget = selectors.widget_get(organization=self.organization, widget_id=pk)
        response = Response(selectors.widget_public_config(widget=widget))
        response["Cache-Control"] = "private, max-age=60"
        return response


class WidgetTokenApi(APIView):
    """`POST /api/v1/auth/widget-token`: a short-lived visitor token for a public client_id.

    Public on purpose (no secret), hence: Origin checked against the widget's allowed
    domains, rate limited per client_id and per client IP, and tokens that can only reach a
    widget's config and that visitor's own sessions.
    """

    cors = CORS_WIDGET_TOKEN_MINT
    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = [PlainJSONRenderer]
    throttle_classes: list = []
    serializer_class = WidgetTokenSerializer

    def _limited(self, request, *, stage: str, client_id: str = "") -> Response | None:
        """Count this mint against the per-IP budget (stage "ip", before anything else: a
        malformed or unknown client_id counts too) or the client_id's (stage "client").

        The client_id's budget keeps a reserve for new visitors: an address that has
        already minted in this window may use only the first (100 - reserve) % of it, so a
        few addresses minting in a loop cannot lock out the next shopper.
        """
        ip = budgets.client_ip(request)
        try:
            if stage == "ip":
                outcome = cache_call(lambda: budgets_hit(budgets=[budgets.widget_token_ip_budget(ip=ip)]))
                refused = outcome.refused is not None
            else:
                budget = budgets.widget_token_client_budget(
                    organization_id=organization_selectors.api_key_organization_id_by_client_id(
                        client_id=client_id
                    ),
                    client_id=client_id,
                )
                outcome = cache_call(lambda: budgets_hit(budgets=[budget]))
                ip_state = getattr(request, "rate_limit_state", None)
                first_from_this_address = ip_state is not None and ip_state.remaining == ip_state.limit - 1
                reserve = math.ceil(budget.limit * settings.WIDGET_TOKEN_NEW_VISITOR_RESERVE_PERCENT / 100)
                usable = budget.limit if first_from_this_address else budget.limit - reserve
                counted = outcome.counts[budget.counter_key]
                refused = counted.count > usable
                if refused:
                    # A refused mint does not use up the budget: the reserve stays for
                    # the new visitors it is kept for, however long an abuser keeps trying.
                    cache_call(lambda: window_count_release(counted=counted))
        except CacheUnavailable:
            # A public, secret-less endpoint: without its limiter it fails closed.
            response = Response(
                error_body(
                    503, "Service temporarily unavailable - rate limiting is unavailable, retry shortly."
                ),
                status=503,
            )
            response["Retry-After"] = "5"
            return response
        rate_limit_state_set(request, outcome.state)
        if not refused:
            return None
        response = Response(
            error_body(429, f"Too many widget token requests - try again in {outcome.state.reset} s."),
            status=429,
        )
        response["Retry-After"] = str(outcome.state.reset)
        return response

    @extend_schema(
        operation_id="auth_widget_token",
        request=WidgetTokenRequestSerializer,
        responses={200: WidgetTokenSerializer},
        auth=[],
    )
    def post(self, request):
        limited = self._limited(request, stage="ip")
        if limited is not None:
            return limited
        serializer = WidgetTokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        client_id = serializer.validated_data["client_id"].strip()
        limited = self._limited(request, stage="client", client_id=client_id)
        if limited is not None:
            return limited
        token, expires_in, _widget = services.widget_token_create(
            client_id=client_id,
            config_id=serializer.validated_data.get("config_id") or None,
            origin=origin_from_header(request.META.get("HTTP_ORIGIN")),
            referer_origin=origin_from_header(request.META.get("HTTP_REFERER")),
            visitor_token=serializer.validated_data.get("visitor_token") or None,
            own_origin=origin_from_header(_base_url(request)),
            user_id=serializer.validated_data.get("user_id"),
            user_hash=serializer.validated_data.get("user_hash"),
            user_token=serializer.validated_data.get("user_token"),
        )
        response = Response({"token": token, "expires_in": expires_in, "token_type": "Bearer"})
        response["Cache-Control"] = "no-store"
        return response
