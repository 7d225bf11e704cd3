"""Base classes for every tenant-owned API view.

The organization is resolved once, from the credential, in `initial()`; querysets are
built from it (`Model.objects.for_organization(self.organization)`), so a view cannot
list or fetch another organization's rows without writing `.unscoped()`.
"""

from __future__ import annotations

from rest_framework import exceptions, generics, mixins, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.ratelimit import budgets_enforce
from organizations import audit as audit_log
from organizations.budgets import request_budgets


class RateLimitHeadersMixin:
    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        state = getattr(request, "rate_limit_state", None)
        if state is not None:
            for header, value in state.headers().items():
                response[header] = value
        return response


class OrganizationAPIView(RateLimitHeadersMixin, APIView):
    """An endpoint reached with an organization credential (API key; widget token if allowed).

    Every request counts against a budget before anything else is decided (so 401 and 403
    answers carry rate-limit headers too, and count): the credential's budgets when it
    authenticates (organizations.budgets), the client IP's when it does not.
    """

    allow_widget_token = False
    throttle_classes: list = []  # budgets_enforce below replaces DRF's throttles
    # Methods that send a visitor's message (counted in the message budgets, see
    # organizations.budgets); set on the views a widget token posts messages to.
    visitor_message_methods: frozenset[str] = frozenset()

    def initial(self, request, *args, **kwargs):
        # DRF's own order is authenticate → permissions → throttles; budgets come before
        # permissions here, so a widget token refused with 403 still counts and shows its
        # budget. The first lines are DRF's `initial` as is.
        self.format_kwarg = self.get_format_suffix(**kwargs)
        request.accepted_renderer, request.accepted_media_type = self.perform_content_negotiation(request)
        request.version, request.versioning_scheme = self.determine_version(request, *args, **kwargs)
        try:
            self.perform_authentication(request)
        except exceptions.APIException:
            self._enforce_budgets(request, credential=None)
            raise
        self._enforce_budgets(request, credential=request.auth)
        self.check_permissions(request)
        self.credential = request.auth
        self.organization = request.auth.organization

    def _enforce_budgets(self, request, *, credential) -> None:
        budgets_enforce(
            request=request,
            stages=request_budgets(request=request, view=self, credential=credential),
            # Widget tokens are minted without a secret: without a working limiter, refuse.
            fail_closed=credential is not None and credential.is_widget,
        )

    def audit(self, action: str, *, target=None, target_type: str = "", changes: dict | None = None) -> None:
        """Record an account-changing action of this request's credential in the audit log."""
        audit_log.audit_request(
            request=self.request,
            organization=self.organization,
            action=action,
            target=target,
            target_type=target_type,
            changes=changes,
        )


class OrganizationGenericAPIView(OrganizationAPIView, generics.GenericAPIView):
    model = None  # a core.tenancy.TenantModel subclass

    def get_queryset(self):
        return self.model.objects.for_organization(self.organization)


class OrganizationListCreateView(mixins.ListModelMixin, mixins.CreateModelMixin, OrganizationGenericAPIView):
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        return self.create(request, *args, **kwargs)

    def perform_create(self, serializer):
        serializer.save(organization=self.organization)


class OrganizationDetailView(
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    OrganizationGenericAPIView,
):
    def get(self, request, *args, **kwargs):
        return self.retrieve(request, *args, **kwargs)

    def patch(self, request, *args, **kwargs):
        return self.partial_update(request, *args, **kwargs)

    def put(self, request, *args, **kwargs):
        return self.update(request, *args, **kwargs)

    def delete(self, request, *args, **kwargs):
        instance = self.get_object()
        self.perform_destroy(instance)
        return Response(None, status=status.HTTP_200_OK)
