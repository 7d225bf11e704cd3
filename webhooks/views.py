"""Settings › Webhooks: endpoints (owners and admins), each with its delivery log."""

from __future__ import annotations

import secrets

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.views import View
from django.views.generic import FormView

from core.dashboard import form_error_apply, paginate
from core.errors import ValidationFailed
from organizations.dashboard import OrganizationMixin
from webhooks import selectors, services
from webhooks.forms import EndpointForm
from webhooks.models import Delivery

USED_TOKENS = "webhook_requests_done"


def _secret_response(view, context):
    response = view.render_to_response(context)
    response["Cache-Control"] = "no-store"  # the only page the secret appears on
    return response


class WebhookListView(OrganizationMixin, FormView):
    """Lists endpoints; a valid POST creates one and shows its signing secret this once."""

    template_name = "webhooks/settings_webhooks.html"
    form_class = EndpointForm
    manage_required = True
    nav = "settings"
    title = "Webhooks"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            page_obj=paginate(self.request, selectors.endpoint_list(organization=self.organization)),
            settings_tab="webhooks",
            request_token=secrets.token_urlsafe(16),
        )
        return context

    def form_valid(self, form):
        token = self.request.POST.get("request_token") or ""
        used = self.request.session.get(USED_TOKENS, [])
        if token and token in used:  # a reload re-posted the form: nothing new is created
            messages.warning(self.request, "That endpoint was already created; its secret was shown once.")
            return redirect(reverse("settings-webhooks"))
        try:
            endpoint, secret = services.endpoint_create(
                organization=self.organization,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                description=form.cleaned_data["description"],
                is_active=form.cleaned_data["is_active"],
                created_by=self.request.user,
            )
        except ValidationFailed as error:
            form_error_apply(form, error)
            return self.form_invalid(form)
        if token:
            self.request.session[USED_TOKENS] = (used + [token])[-20:]
        self.audit(
            "webhook.created",
            target=endpoint,
            changes=services.endpoint_audit_changes({"url": endpoint.url, "events": endpoint.events}),
        )
        context = self.get_context_data(form=EndpointForm(), new_endpoint=endpoint, new_secret=secret)
        return _secret_response(self, context)


class WebhookDetailView(OrganizationMixin, FormView):
    """One endpoint: edit it, rotate its secret, delete it, and its delivery log."""

    template_name = "webhooks/webhook_detail.html"
    form_class = EndpointForm
    manage_required = True
    nav = "settings"
    title = "Webhook"

    def get_endpoint(self):
        return self.scoped_get(selectors.endpoint_list(organization=self.organization), pk=self.kwargs["pk"])

    def get_initial(self):
        endpoint = self.get_endpoint()
        return {
            "url": endpoint.url,
            "events": endpoint.events,
            "description": endpoint.description,
            "is_active": endpoint.is_active,
        }

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        endpoint = self.get_endpoint()
        wanted = self.request.GET.get("status")
        wanted = wanted if wanted in Delivery.Status.values else None
        context.update(
            endpoint=endpoint,
            settings_tab="webhooks",
            status_filter=wanted or "",
            statuses=Delivery.Status.values,
            page_obj=paginate(self.request, selectors.delivery_list(endpoint=endpoint, status=wanted)),
        )
        return context

    def post(self, request, *args, **kwargs):
        action = request.POST.get("action", "save")
        endpoint = self.get_endpoint()
        if action == "rotate":
            endpoint, secret = services.endpoint_secret_rotate(endpoint=endpoint)
            self.audit("webhook.secret_rotated", target=endpoint)
            return _secret_response(self, self.get_context_data(new_secret=secret))
        if action == "delete":
            self.audit(
                "webhook.deleted",
                target=endpoint,
                changes=services.endpoint_audit_changes({"url": endpoint.url}),
            )
            services.endpoint_delete(endpoint=endpoint)
            messages.success(request, f"Webhook endpoint {endpoint.url} deleted.")
            return redirect(reverse("settings-webhooks"))
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        changes = {
            "url": form.cleaned_data["url"],
            "events": form.cleaned_data["events"],
            "description": form.cleaned_data["description"],
            "is_active": form.cleaned_data["is_active"],
        }
        endpoint = self.get_endpoint()
        enabled = services.endpoint_enable_audit(endpoint)
        try:
            endpoint = services.endpoint_update(endpoint=endpoint, **changes)
        except ValidationFailed as error:
            form_error_apply(form, error)
            return self.form_invalid(form)
        self.audit("webhook.updated", target=endpoint, changes=services.endpoint_audit_changes(changes))
        if enabled is not None and endpoint.is_active:
            self.audit("webhook.enabled", target=endpoint, changes=enabled)
        messages.success(self.request, "Webhook endpoint saved.")
        return redirect(reverse("settings-webhook-detail", args=[endpoint.pk]))


class WebhookResendView(OrganizationMixin, View):
    manage_required = True

    def post(self, request, pk, delivery_id):
        endpoint = self.scoped_get(selectors.endpoint_list(organization=self.organization), pk=pk)
        delivery = selectors.delivery_get(endpoint=endpoint, delivery_id=delivery_id)
        if delivery is None:
            raise Http404("Not found.")
        try:
            copy = services.delivery_resend(delivery=delivery)
        except ValidationFailed as error:
            messages.error(request, error.message)
        else:
            self.audit(
                "webhook.delivery_resent",
                target=endpoint,
                changes=services.delivery_resend_audit(delivery=delivery, copy=copy),
            )
            messages.success(request, f"{delivery.event_type} queued to be sent again.")
        return redirect(reverse("settings-webhook-detail", args=[endpoint.pk]))
