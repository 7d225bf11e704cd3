"""`GET /widget.js` (the embeddable script, from its source in static/widget/) and the
hosted widget page for `<iframe>` embedding."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.staticfiles import finders
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_safe
from django.views.generic import FormView, TemplateView, View

from assistants import selectors as assistant_selectors
from core.dashboard import lines, paginate, service_errors
from core.errors import NotFound
from organizations import selectors as organization_selectors
from organizations.dashboard import OrganizationMixin
from organizations.selectors import api_key_widget_facing
from widget import selectors, services
from widget.forms import WidgetCreateForm, WidgetForm
from widget.selectors import widget_find_public
from widget.tokens import widget_token_issue

WIDGET_SOURCE = "widget/widget.js"


@dataclass(frozen=True)
class _Script:
    mtime: float
    body: bytes
    gzipped: bytes
    etag: str


_cache: dict[str, _Script] = {}


def _script() -> _Script:
    location = finders.find(WIDGET_SOURCE) or str(Path(settings.STATIC_ROOT) / WIDGET_SOURCE)
    path = Path(location)
    if not path.exists():
        raise Http404("widget.js is missing")
    mtime = path.stat().st_mtime
    cached = _cache.get(WIDGET_SOURCE)
    if cached is None or cached.mtime != mtime:
        body = path.read_bytes()
        cached = _Script(
            mtime=mtime,
            body=body,
            gzipped=gzip.compress(body, compresslevel=9, mtime=0),
            etag='"' + hashlib.sha256(body).hexdigest()[:20] + '"',
        )
        _cache[WIDGET_SOURCE] = cached
    return cached


@require_safe
def widget_js(request: HttpRequest) -> HttpResponse:
    script = _script()
    if script.etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        response = HttpResponseNotModified()
    else:
        accepts_gzip = "gzip" in request.headers.get("Accept-Encoding", "")
        response = HttpResponse(
            script.gzipped if accepts_gzip else script.body,
            content_type="text/javascript; charset=utf-8",
        )
        if accepts_gzip:
            response["Content-Encoding"] = "gzip"
        response["Content-Length"] = str(len(response.content))
    response["ETag"] = script.etag
    # Cached for an hour, then revalidated with the ETag (cheap 304), served stale while that
    # happens: customers' pages pick up a new release within the hour without a version bump.
    response["Cache-Control"] = "public, max-age=3600, stale-while-revalidate=86400"
    # Any site may load the script (it is public); it may also be fetched with `crossorigin`.
    response["Access-Control-Allow-Origin"] = "*"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    patch_vary_headers(response, ["Accept-Encoding"])
    return response


def _frame_ancestors(allowed_domains: list[str]) -> str:
    # An empty allow-list means "anywhere", as for the script; origins were validated on save.
    return " ".join(["'self'", *allowed_domains]) if allowed_domains else "*"


@require_safe
@xframe_options_exempt  # framing is governed by the CSP `frame-ancestors` below instead
def widget_frame(request: HttpRequest, pk) -> HttpResponse:
    """The widget on a page of its own, for sites that prefer an `<iframe>` to a script.

    Only the widget's allowed domains may frame it (`frame-ancestors`), and the page itself
    may load nothing but our script and talk to nothing but our API.
    """
    widget = widget_find_public(widget_id=pk)
    api_key = api_key_widget_facing(organization=widget.organization) if widget else None
    if widget is None or api_key is None:
        raise Http404("No such widget")
    response = render(
        request,
        "widget/frame.html",
        {
            "title": widget.title,
            "script_url": "/widget.js",
            "client_id": api_key.client_id,
            "assistant_id": widget.assistant_id,
            "widget_id": widget.id,
            "instance": (widget.options or {}).get("instance") or "frame",
        },
    )
    response["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"base-uri 'none'; form-action 'none'; frame-ancestors {_frame_ancestors(widget.allowed_domains or [])}"
    )
    response["Cache-Control"] = "private, max-age=60"
    response["Referrer-Policy"] = "origin"
    return response


# --- Dashboard: widget configurator ------------------------------------------------------


def _base_url(request) -> str:
    """The origin the operator's browser is on (the preview's token is bound to it)."""
    return f"{request.scheme}://{request.get_host()}"


class WidgetMixin(OrganizationMixin):
    nav = "widget"

    def get_widget(self):
        try:
            return selectors.widget_get(organization=self.organization, widget_id=self.kwargs["pk"])
        except NotFound:
            raise Http404("Not found.") from None

    def assistants(self):
        return assistant_selectors.assistant_list(organization=self.organization)


class WidgetListView(WidgetMixin, FormView):
    template_name = "widget/widget_list.html"
    form_class = WidgetCreateForm
    title = "Widget"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "assistants": self.assistants()}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            page_obj=paginate(self.request, selectors.widget_list(organization=self.organization)),
            has_assistant=self.assistants().exists(),
        )
        return context

    def form_valid(self, form):
        if not self.membership.can_manage:
            raise PermissionDenied("Only owners and admins can create widgets.")
        with service_errors(form) as failure:
            widget = services.widget_create(
                organization=self.organization,
                assistant_id=form.cleaned_data["assistant"],
                title=form.cleaned_data["title"],
            )
        if failure:
            return self.form_invalid(form)
        self.audit("widget.created", target=widget, changes={"title": widget.title})
        messages.success(self.request, f"Widget “{widget.title}” created. Style it and copy the snippet.")
        return redirect("widget-configure", pk=widget.pk)


class WidgetDetailView(WidgetMixin, FormView):
    """The configurator: settings on the left, the real widget and the snippet on the right."""

    template_name = "widget/widget_detail.html"
    form_class = WidgetForm
    title = "Configure widget"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "assistants": self.assistants()}

    def get_initial(self):
        widget = self.get_widget()
        options = widget.options or {}
        return {
            "assistant": str(widget.assistant_id),
            "title": widget.title,
            "greeting": widget.greeting,
            "placeholder": widget.placeholder,
            "launcher_label": widget.launcher_label,
            "primary_color": widget.primary_color,
            "position": widget.position,
            "suggested_questions": "\n".join(widget.suggested_questions or []),
            "allowed_domains": "\n".join(widget.allowed_domains or []),
            "show_sources": options.get("show_sources", True),
            "collect_feedback": options.get("collect_feedback", True),
            "auto_open": options.get("auto_open", False),
            "human_handoff": options.get("human_handoff", "after_answer"),
            "is_active": widget.is_active,
            "require_verified_visitors": widget.require_verified_visitors,
        }

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        widget = self.get_widget()
        api_key = organization_selectors.api_key_widget_facing(organization=self.organization)
        context.update(
            widget=widget,
            snippet=selectors.widget_embed_snippet(widget=widget, base_url=settings.SITE_URL),
            frame_url=settings.SITE_URL + reverse("widget-frame", args=[widget.pk]),
            client_id=api_key.client_id if api_key else None,
            preview_url=reverse("widget-preview", args=[widget.pk])
            + f"?v={int(widget.updated_at.timestamp())}",
        )
        return context

    def form_valid(self, form):
        if not self.membership.can_manage:
            raise PermissionDenied("Only owners and admins can change widgets.")
        widget = self.get_widget()
        data = form.cleaned_data
        options = dict(widget.options or {})
        options.update(
            show_sources=data["show_sources"],
            collect_feedback=data["collect_feedback"],
            auto_open=data["auto_open"],
            human_handoff=data["human_handoff"],
        )
        fields = {
            "title": data["title"],
            "greeting": data["greeting"],
            "placeholder": data["placeholder"],
            "launcher_label": data["launcher_label"],
            "primary_color": data["primary_color"],
            "position": data["position"],
            "suggested_questions": lines(data["suggested_questions"]),
            "allowed_domains": lines(data["allowed_domains"]),
            "options": options,
            "is_active": data["is_active"],
            "require_verified_visitors": data["require_verified_visitors"],
        }
        before = {name: getattr(widget, name) for name in (*fields, "assistant_id")}
        with service_errors(form) as failure:
            widget = services.widget_update(widget=widget, assistant_id=data["assistant"], **fields)
        if failure:
            return self.form_invalid(form)
        # The values saved (the service normalises allowed domains to origins, for one).
        changes = {
            name: [old, getattr(widget, name)] for name, old in before.items() if getattr(widget, name) != old
        }
        self.audit("widget.updated", target=widget, changes=changes)
        messages.success(self.request, "Widget saved. The preview shows the new settings.")
        return redirect("widget-configure", pk=widget.pk)


class WidgetKeyCreateView(WidgetMixin, View):
    """The snippet needs a public client_id: create the organization's widget key if none."""

    manage_required = True

    def post(self, request, pk):
        widget = self.get_widget()
        existing = api_key_widget_facing(organization=self.organization)
        api_key = services.widget_client_key_get_or_create(organization=self.organization)
        if existing is None:
            self.audit(
                "api_key.created",
                target=api_key,
                changes={"name": api_key.name, "client_id": api_key.client_id},
            )
        messages.success(request, "Created a “Widget” API key; its client ID is in the snippet.")
        return redirect("widget-configure", pk=widget.pk)


class WidgetDeleteView(WidgetMixin, TemplateView):
    template_name = "widget/widget_delete.html"
    manage_required = True
    title = "Delete widget"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "widget": self.get_widget()}

    def post(self, request, pk):
        widget = self.get_widget()
        services.widget_delete(widget=widget)
        self.audit("widget.deleted", target_type="widget", changes={"id": str(pk), "title": widget.title})
        messages.success(request, f"Widget “{widget.title}” deleted. Sites that embed it stop showing it.")
        return redirect("widgets")


class WidgetPreviewView(WidgetMixin, TemplateView):
    """A stand-in customer page that loads the real /widget.js with this widget's snippet.

    The widget gets a token minted here, bound to the dashboard's origin and to one stable
    preview visitor per operator and widget, so the preview works whatever the widget's
    allowed domains are and keeps its conversation across reloads. It is the one dashboard
    page that may be framed, and only by the dashboard itself (the configurator's iframe).
    """

    template_name = "widget/widget_preview.html"

    def get_context_data(self, **kwargs):
        widget = self.get_widget()
        api_key = organization_selectors.api_key_widget_facing(organization=self.organization)
        visitor = hashlib.sha256(f"{self.request.user.pk}:{widget.pk}".encode()).hexdigest()[:24]
        token, expires_in = widget_token_issue(
            organization_id=self.organization.pk,
            widget_id=widget.pk,
            visitor_id=f"preview_{visitor}",
            origin=_base_url(self.request),
            preview=True,
        )
        return {
            **super().get_context_data(**kwargs),
            "widget": widget,
            "client_id": api_key.client_id if api_key else None,
            "instance": f"preview-{widget.pk.hex[:12]}",
            "token": token,
            "expires_in": expires_in,
        }

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        response["X-Frame-Options"] = "SAMEORIGIN"
        response["Cache-Control"] = "no-store"
        response["Content-Security-Policy"] = response.get("Content-Security-Policy", "").replace(
            "frame-ancestors 'none'", "frame-ancestors 'self'"
        )
        return response
