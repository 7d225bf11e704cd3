from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from assistants import selectors, services
from assistants.models import Assistant, UserContext
from assistants.serializers import AssistantSerializer, UserContextSerializer
from organizations import audit as audit_log
from supportai.api.views import OrganizationGenericAPIView


class AssistantListCreateApi(OrganizationGenericAPIView):
    model = Assistant
    serializer_class = AssistantSerializer

    @extend_schema(operation_id="assistants_list", responses=AssistantSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(selectors.assistant_list(organization=self.organization))
        return self.get_paginated_response(AssistantSerializer(page, many=True).data)

    @extend_schema(
        operation_id="assistants_create", request=AssistantSerializer, responses={201: AssistantSerializer}
    )
    def post(self, request):
        serializer = AssistantSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        assistant = services.assistant_create(organization=self.organization, **serializer.validated_data)
        self.audit("assistant.created", target=assistant, changes={"name": assistant.name})
        return Response(AssistantSerializer(assistant).data, status=status.HTTP_201_CREATED)


class AssistantDetailApi(OrganizationGenericAPIView):
    model = Assistant
    serializer_class = AssistantSerializer

    def _assistant(self, pk) -> Assistant:
        return selectors.assistant_get(organization=self.organization, assistant_id=pk)

    @extend_schema(operation_id="assistants_retrieve", responses=AssistantSerializer)
    def get(self, request, pk):
        return Response(AssistantSerializer(self._assistant(pk)).data)

    @extend_schema(
        operation_id="assistants_partial_update", request=AssistantSerializer, responses=AssistantSerializer
    )
    def patch(self, request, pk):
        assistant = self._assistant(pk)
        serializer = AssistantSerializer(assistant, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = audit_log.model_changes(assistant, dict(serializer.validated_data))
        assistant = services.assistant_update(assistant=assistant, **serializer.validated_data)
        self.audit("assistant.updated", target=assistant, changes=changes)
        return Response(AssistantSerializer(assistant).data)

    @extend_schema(
        operation_id="assistants_update", request=AssistantSerializer, responses=AssistantSerializer
    )
    def put(self, request, pk):
        assistant = self._assistant(pk)
        serializer = AssistantSerializer(assistant, data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = audit_log.model_changes(assistant, dict(serializer.validated_data))
        assistant = services.assistant_update(assistant=assistant, **serializer.validated_data)
        self.audit("assistant.updated", target=assistant, changes=changes)
        return Response(AssistantSerializer(assistant).data)

    @extend_schema(operation_id="assistants_destroy", responses={200: None})
    def delete(self, request, pk):
        assistant = self._assistant(pk)
        services.assistant_delete(assistant=assistant)
        self.audit(
            "assistant.deleted", target_type="assistant", changes={"id": str(pk), "name": assistant.name}
        )
        return Response(None, status=status.HTTP_200_OK)


class UserContextListCreateApi(OrganizationGenericAPIView):
    model = UserContext
    serializer_class = UserContextSerializer

    @extend_schema(operation_id="contexts_list", responses=UserContextSerializer(many=True))
    def get(self, request):
        queryset = selectors.user_context_list(
            organization=self.organization, user_reference=request.query_params.get("user_reference")
        )
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(UserContextSerializer(page, many=True).data)

    @extend_schema(
        operation_id="contexts_create", request=UserContextSerializer, responses={201: UserContextSerializer}
    )
    def post(self, request):
        serializer = UserContextSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        context = services.user_context_create(organization=self.organization, **serializer.validated_data)
        return Response(UserContextSerializer(context).data, status=status.HTTP_201_CREATED)


class UserContextDetailApi(OrganizationGenericAPIView):
    model = UserContext
    serializer_class = UserContextSerializer

    @extend_schema(operation_id="contexts_retrieve", responses=UserContextSerializer)
    def get(self, request, pk):
        return Response(UserContextSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="contexts_partial_update", request=UserContextSerializer, responses=UserContextSerializer
    )
    def patch(self, request, pk):
        context = self.get_object()
        serializer = UserContextSerializer(context, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        context = services.user_context_update(user_context=context, **serializer.validated_data)
        return Response(UserContextSerializer(context).data)

    @extend_schema(
        operation_id="contexts_update", request=UserContextSerializer, responses=UserContextSerializer
    )
    def put(self, request, pk):
        context = self.get_object()
        serializer = UserContextSerializer(context, data=request.data)
        serializer.is_valid(raise_exception=True)
        context = services.user_context_update(user_context=context, **serializer.validated_data)
        return Response(UserContextSerializer(context).data)

    @extend_schema(operation_id="contexts_destroy", responses={200: None})
    def delete(self, request, pk):
        services.user_context_delete(user_context=self.get_object())
        return Response(None, status=status.HTTP_200_OK)
