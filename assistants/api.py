from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from assistants import actions as action_rules
from assistants import selectors, services
from assistants.models import Action, Assistant, UserContext
from assistants.serializers import (
    ActionImportResultSerializer,
    ActionImportSerializer,
    ActionSerializer,
    AssistantSerializer,
    UserContextSerializer,
)
from core.errors import ValidationFailed
from organizations import audit as audit_log
from organizations.api_base import OrganizationGenericAPIView


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
        serializer = AssistantSerializer(data=request.data, context={"organization": self.organization})
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
        serializer = AssistantSerializer(
            assistant, data=request.data, partial=True, context={"organization": self.organization}
        )
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
        serializer = AssistantSerializer(
            assistant, data=request.data, context={"organization": self.organization}
        )
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
        # Like a session's deletion: the id only, not the customer it named.
        self.audit("context.deleted", target_type="usercontext", changes={"id": str(pk)})
        return Response(None, status=status.HTTP_200_OK)


def _action_changes(action: Action, data: dict) -> dict:
    """What an update changes, for the audit log: header names, never their values."""
    changes = audit_log.model_changes(action, {k: v for k, v in data.items() if k != "headers"})
    if "headers" in data:
        changes["headers"] = sorted(data["headers"] or {}, key=str.lower)
    return changes


class _ActionBase(OrganizationGenericAPIView):
    model = Action
    serializer_class = ActionSerializer

    def _assistant(self, pk) -> Assistant:
        return selectors.assistant_get(organization=self.organization, assistant_id=pk)


class ActionListCreateApi(_ActionBase):
    @extend_schema(operation_id="assistant_actions_list", responses=ActionSerializer(many=True))
    def get(self, request, pk):
        assistant = self._assistant(pk)
        page = self.paginate_queryset(
            selectors.action_list(organization=self.organization, assistant=assistant)
        )
        return self.get_paginated_response(ActionSerializer(page, many=True).data)

    @extend_schema(
        operation_id="assistant_actions_create", request=ActionSerializer, responses={201: ActionSerializer}
    )
    def post(self, request, pk):
        assistant = self._assistant(pk)
        serializer = ActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        action = services.action_create(
            organization=self.organization, assistant=assistant, **serializer.validated_data
        )
        self.audit(
            "action.created",
            target=action,
            changes={"name": action.name, "assistant": str(assistant.pk), "headers": action.header_names},
        )
        return Response(ActionSerializer(action).data, status=status.HTTP_201_CREATED)


class ActionDetailApi(_ActionBase):
    def _action(self, pk, action_id) -> Action:
        return selectors.action_get(
            organization=self.organization, assistant=self._assistant(pk), action_id=action_id
        )

    @extend_schema(operation_id="assistant_actions_retrieve", responses=ActionSerializer)
    def get(self, request, pk, action_id):
        return Response(ActionSerializer(self._action(pk, action_id)).data)

    def _update(self, request, pk, action_id, *, partial: bool):
        action = self._action(pk, action_id)
        serializer = ActionSerializer(action, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        changes = _action_changes(action, data)
        action = services.action_update(action=action, replace_headers=not partial, **data)
        self.audit("action.updated", target=action, changes=changes)
        return Response(ActionSerializer(action).data)

    @extend_schema(
        operation_id="assistant_actions_partial_update", request=ActionSerializer, responses=ActionSerializer
    )
    def patch(self, request, pk, action_id):
        return self._update(request, pk, action_id, partial=True)

    @extend_schema(
        operation_id="assistant_actions_update", request=ActionSerializer, responses=ActionSerializer
    )
    def put(self, request, pk, action_id):
        return self._update(request, pk, action_id, partial=False)

    @extend_schema(operation_id="assistant_actions_destroy", responses={200: None})
    def delete(self, request, pk, action_id):
        action = self._action(pk, action_id)
        services.action_delete(action=action)
        self.audit(
            "action.deleted", target_type="action", changes={"id": str(action_id), "name": action.name}
        )
        return Response(None, status=status.HTTP_200_OK)


class ActionImportApi(_ActionBase):
    """Turns an OpenAPI 3 operation into a prefilled action (not saved: review, then create)."""

    serializer_class = ActionImportSerializer

    @extend_schema(
        operation_id="assistant_actions_import_openapi",
        request=ActionImportSerializer,
        responses=ActionImportResultSerializer,
    )
    def post(self, request, pk):
        self._assistant(pk)
        serializer = ActionImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            prefilled = action_rules.openapi_operation_import(
                data["document"],
                path=data.get("path", ""),
                method=data.get("method", ""),
                base_url=data.get("base_url", ""),
            )
        except action_rules.ActionInvalid as error:
            raise ValidationFailed(error.message, details={error.field: [error.message]}) from None
        return Response(prefilled)
