"""Base classes for every tenant-owned API view.

The organization is resolved once, from the credential, in `initial()`; querysets are
built from it (`Model.objects.for_organization(self.organization)`), so a view cannot
list or fetch another organization's rows without writing `.unscoped()`.
"""

from __future__ import annotations

from rest_framework import generics, mixins, status
from rest_framework.response import Response
from rest_framework.views import APIView

from supportai.api.ratelimit import OrganizationRateThrottle


class RateLimitHeadersMixin:
    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        state = getattr(request, "rate_limit_state", None)
        if state is not None:
            for header, value in state.headers().items():
                response[header] = value
        return response


class OrganizationAPIView(RateLimitHeadersMixin, APIView):
    """An endpoint reached with an organization credential (API key; widget token if allowed)."""

    allow_widget_token = False
    throttle_classes = [OrganizationRateThrottle]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.credential = request.auth
        self.organization = request.auth.organization


class OrganizationGenericAPIView(OrganizationAPIView, generics.GenericAPIView):
    model = None  # a supportai.tenancy.TenantModel subclass

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
