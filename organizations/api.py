from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from organizations import selectors, services
from organizations.models import ApiKey
from organizations.serializers import ApiKeyCreateSerializer, ApiKeySerializer, OrganizationSerializer
from supportai.api.views import OrganizationAPIView, OrganizationGenericAPIView


class OrganizationDetailApi(OrganizationAPIView):
    """The organization the credential belongs to."""

    @extend_schema(responses=OrganizationSerializer)
    def get(self, request):
        return Response(OrganizationSerializer(self.organization).data)


class ApiKeyListCreateApi(OrganizationGenericAPIView):
    model = ApiKey
    serializer_class = ApiKeySerializer

    @extend_schema(operation_id="api_keys_list", responses=ApiKeySerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(selectors.api_key_list(organization=self.organization))
        return self.get_paginated_response(ApiKeySerializer(page, many=True).data)

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeySerializer})
    def post(self, request):
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, secret = services.api_key_create(
            organization=self.organization, name=serializer.validated_data["name"]
        )
        data = dict(ApiKeySerializer(api_key).data, client_secret=secret)
        return Response(data, status=status.HTTP_201_CREATED)


class ApiKeyDetailApi(OrganizationGenericAPIView):
    model = ApiKey
    serializer_class = ApiKeySerializer

    def get(self, request, pk):
        return Response(ApiKeySerializer(self.get_object()).data)

    @extend_schema(operation_id="api_keys_revoke", responses=ApiKeySerializer)
    def delete(self, request, pk):
        api_key = services.api_key_revoke(api_key=self.get_object())
        return Response(ApiKeySerializer(api_key).data)
