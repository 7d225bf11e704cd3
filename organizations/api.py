import re
from datetime import UTC, datetime, time

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response

from core.api.pagination import CursorPagination
from core.errors import ValidationFailed
from organizations import selectors, services
from organizations.api_base import OrganizationAPIView, OrganizationGenericAPIView
from organizations.audit import audit_event_list
from organizations.models import ApiKey, AuditEvent
from organizations.selectors import api_key_may_administer
from organizations.serializers import (
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    AuditEventSerializer,
    OrganizationSerializer,
)


class OrganizationDetailApi(OrganizationAPIView):
    """The organization the credential belongs to."""

    @extend_schema(responses=OrganizationSerializer)
    def get(self, request):
        return Response(OrganizationSerializer(self.organization).data)


def _administering_key_required(api_key: ApiKey, what: str) -> None:
    """Only owners and admins manage keys in the dashboard; through the API, only a key that
    may administer (`api_key_may_administer`). Before this, a key of a member since demoted or
    removed could mint a key without a creator, which may administer (erasure, export, the
    audit log, webhooks)."""
    if not api_key_may_administer(api_key=api_key):
        raise exceptions.PermissionDenied(f"Only an API key made by an owner or admin may {what}.")


class ApiKeyListCreateApi(OrganizationGenericAPIView):
    model = ApiKey
    serializer_class = ApiKeySerializer

    @extend_schema(operation_id="api_keys_list", responses=ApiKeySerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(selectors.api_key_list(organization=self.organization))
        return self.get_paginated_response(ApiKeySerializer(page, many=True).data)

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeySerializer})
    def post(self, request):
        _administering_key_required(self.credential.api_key, "create API keys")
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # The new key is the calling key's creator's, so it can never do more than the key
        # that made it (a key "made by a command", with no creator, may administer).
        api_key, secret = services.api_key_create(
            organization=self.organization,
            name=serializer.validated_data["name"],
            created_by=self.credential.api_key.created_by,
        )
        self.audit(
            "api_key.created", target=api_key, changes={"name": api_key.name, "client_id": api_key.client_id}
        )
        data = dict(ApiKeySerializer(api_key).data, client_secret=secret)
        response = Response(data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"  # the only answer the secret is ever in
        return response


class ApiKeyDetailApi(OrganizationGenericAPIView):
    model = ApiKey
    serializer_class = ApiKeySerializer

    def get(self, request, pk):
        return Response(ApiKeySerializer(self.get_object()).data)

    @extend_schema(operation_id="api_keys_revoke", responses={200: ApiKeySerializer})
    def delete(self, request, pk):
        api_key = self.get_object()
        _administering_key_required(self.credential.api_key, "revoke API keys")
        api_key = services.api_key_revoke(api_key=api_key)
        self.audit("api_key.revoked", target=api_key, changes={"name": api_key.name})
        return Response(ApiKeySerializer(api_key).data)


def _since(value: str | None):
    if not value:
        return None
    # `?since=2026-12-06T08:00:00+01:00` typed into a URL unencoded: its "+" arrives as a space.
    value = re.sub(r"([T ]\d\d:\d\d(:\d\d(\.\d+)?)?) (\d\d(:?\d\d)?)$", r"\1+\4", value)
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            moment = datetime.combine(day, time.min) if day else None
    except ValueError:  # shaped like one, but no such date or time ("2026-02-30", "T25:00")
        moment = None
    if moment is None:
        raise ValidationFailed(
            "since must be an ISO 8601 date or date-time.",
            details={"since": ["An ISO 8601 date or date-time."]},
        )
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


class AuditEventListApi(OrganizationGenericAPIView):
    """`GET /api/v1/audit-events` — the organization's audit log, newest first, cursor-paged.
    Filters: `action` (e.g. `api_key.created`, or a prefix such as `api_key`), `actor`
    (part of an email or `api_key:<name>`), `since` (ISO date or date-time). Owner/admin keys only."""

    model = AuditEvent
    serializer_class = AuditEventSerializer
    pagination_class = CursorPagination

    @extend_schema(
        operation_id="audit_events_list",
        parameters=[
            OpenApiParameter("action", str),
            OpenApiParameter("actor", str),
            OpenApiParameter("since", str),
            OpenApiParameter("cursor", str),
            OpenApiParameter("page_size", int),
        ],
        responses=AuditEventSerializer(many=True),
    )
    def get(self, request):
        if not api_key_may_administer(api_key=self.credential.api_key):
            raise exceptions.PermissionDenied(
                "Only an API key made by an owner or admin may read the audit log."
            )
        events = audit_event_list(
            organization=self.organization,
            action=(request.query_params.get("action") or "").strip()[:64] or None,
            actor=(request.query_params.get("actor") or "").strip()[:255] or None,
            since=_since(request.query_params.get("since")),
        )
        page = self.paginate_queryset(events)
        return self.get_paginated_response(AuditEventSerializer(page, many=True).data)
