"""Privacy endpoints: erase everything held about one person, and export it (API key of an
owner or admin; widget tokens get 403 from the base class)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from chat import selectors
from chat.services.privacy import privacy_erase
from organizations.api_base import OrganizationAPIView
from organizations.selectors import api_key_may_administer


def administering_key_required(view) -> None:
    api_key = view.credential.api_key
    if api_key is None or not api_key_may_administer(api_key=api_key):
        raise exceptions.PermissionDenied("Only an API key made by an owner or admin may do this.")


class PrivacyEraseRequestSerializer(serializers.Serializer):
    customer_id = serializers.CharField(required=False, max_length=255)
    visitor_id = serializers.CharField(required=False, max_length=255)
    email = serializers.CharField(required=False, max_length=255)


class PrivacyEraseResultSerializer(serializers.Serializer):
    sessions = serializers.IntegerField()
    conversations = serializers.IntegerField()
    messages = serializers.IntegerField()
    feedback = serializers.IntegerField()
    csat = serializers.IntegerField()
    contexts = serializers.IntegerField()
    rate_counters = serializers.IntegerField()
    audit_events = serializers.IntegerField()


_SUBJECT_PARAMETERS = [OpenApiParameter(kind, str) for kind in selectors.SUBJECT_KINDS]


class PrivacyEraseApi(OrganizationAPIView):
    """`POST /api/v1/privacy/erase` with exactly one of customer_id, visitor_id, email."""

    serializer_class = PrivacyEraseRequestSerializer

    @extend_schema(
        operation_id="privacy_erase",
        request=PrivacyEraseRequestSerializer,
        responses=PrivacyEraseResultSerializer,
    )
    def post(self, request):
        administering_key_required(self)
        body = request.data if isinstance(request.data, dict) else {}
        serializer = PrivacyEraseRequestSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        subject = selectors.subject_from(body)
        counts = privacy_erase(organization=self.organization, subject=subject)
        # The identifier itself is what was erased: the event names only its kind.
        self.audit("privacy.erased", target_type="person", changes={"by": subject.kind, **counts})
        return Response(counts)


class PrivacyExportApi(OrganizationAPIView):
    """`GET /api/v1/privacy/export?customer_id=…` (or visitor_id, email): one JSON document."""

    @extend_schema(operation_id="privacy_export", parameters=_SUBJECT_PARAMETERS, responses={200: dict})
    def get(self, request):
        administering_key_required(self)
        subject = selectors.subject_from(request.query_params)
        self.audit("privacy.exported", target_type="person", changes={"by": subject.kind})
        response = Response(selectors.privacy_export(organization=self.organization, subject=subject))
        response["Cache-Control"] = "no-store"
        return response
