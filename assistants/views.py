"""Dashboard: assistants (list, create, edit the persona, delete).

(The playground, a chat with the assistant, is chat's: `chat.views.PlaygroundView`.)
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.views import View
from django.views.generic import FormView, TemplateView

from assistants import actions as action_rules
from assistants import llm_models, selectors, services
from assistants.forms import (
    TONES,
    ActionForm,
    ActionImportForm,
    AssistantForm,
    ModelConnectionForm,
    ModelConnectionUpdateForm,
)
from core.dashboard import paginate, service_errors
from core.errors import NotFound
from organizations import audit as audit_log
from organizations.dashboard import OrganizationMixin


class AssistantMixin(OrganizationMixin):
    nav = "assistants"

    def get_assistant(self):
        try:
            return selectors.assistant_get(organization=self.organization, assistant_id=self.kwargs["pk"])
        except NotFound:
            raise Http404("Not found.") from None

    def offline_context(self, assistant=None) -> dict:
        """Whether the assistant answers with the built-in offline answerer, for the notice
        that tone, instructions and temperature then have no effect."""
        model = assistant.model if assistant is not None else ""
        route = llm_models.model_route(organization=self.organization, assistant_model=model)
        return {"runs_offline": route.offline}


class AssistantListView(AssistantMixin, TemplateView):
    template_name = "assistants/assistant_list.html"
    title = "Assistants"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["page_obj"] = paginate(self.request, selectors.assistant_list(organization=self.organization))
        return context


def _persona(form) -> dict:
    """The form's values for the assistant; an empty handoff count keeps the current one."""
    data = dict(form.cleaned_data)
    if data.get("handoff_after_unanswered") is None:
        data.pop("handoff_after_unanswered", None)
    return data


class AssistantCreateView(AssistantMixin, FormView):
    template_name = "assistants/assistant_form.html"
    form_class = AssistantForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "organization": self.organization}

    manage_required = True
    title = "New assistant"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "tones": TONES, **self.offline_context()}

    def form_valid(self, form):
        data = _persona(form)
        with service_errors(form) as failure:
            assistant = services.assistant_create(organization=self.organization, **data)
        if failure:
            return self.form_invalid(form)
        self.audit("assistant.created", target=assistant, changes={"name": assistant.name})
        messages.success(
            self.request, f"“{assistant.name}” created. Add knowledge, then try it in the playground."
        )
        return redirect("assistant-playground", pk=assistant.pk)


class AssistantUpdateView(AssistantMixin, FormView):
    template_name = "assistants/assistant_form.html"
    form_class = AssistantForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "organization": self.organization}

    title = "Edit assistant"

    def get_initial(self):
        assistant = self.get_assistant()
        return {
            "name": assistant.name,
            "description": assistant.description,
            "tone": assistant.tone,
            "language": assistant.language,
            "default_tasks": "\n".join(assistant.default_tasks or []),
            "instructions": assistant.instructions,
            "model": assistant.model,
            "temperature": assistant.temperature,
            "is_active": assistant.is_active,
            "handoff_after_unanswered": assistant.handoff_after_unanswered,
            "handoff_on_thumbs_down": assistant.handoff_on_thumbs_down,
        }

    def get_context_data(self, **kwargs):
        assistant = self.get_assistant()
        return {
            **super().get_context_data(**kwargs),
            "assistant": assistant,
            "tones": TONES,
            "actions": selectors.action_list(organization=self.organization, assistant=assistant),
            **self.offline_context(assistant),
        }

    def form_valid(self, form):
        if not self.membership.can_manage:
            messages.error(self.request, "Only owners and admins can change assistants.")
            return redirect("assistant-edit", pk=self.kwargs["pk"])
        assistant = self.get_assistant()
        data = _persona(form)
        changes = audit_log.model_changes(assistant, data)
        with service_errors(form) as failure:
            services.assistant_update(assistant=assistant, **data)
        if failure:
            return self.form_invalid(form)
        self.audit("assistant.updated", target=assistant, changes=changes)
        messages.success(self.request, "Persona saved. New answers use it right away.")
        return redirect("assistant-edit", pk=assistant.pk)


class AssistantDeleteView(AssistantMixin, TemplateView):
    template_name = "assistants/assistant_delete.html"
    manage_required = True
    title = "Delete assistant"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "assistant": self.get_assistant()}

    def post(self, request, pk):
        assistant = self.get_assistant()
        services.assistant_delete(assistant=assistant)
        self.audit(
            "assistant.deleted", target_type="assistant", changes={"id": str(pk), "name": assistant.name}
        )
        messages.success(request, f"“{assistant.name}” deleted.")
        return redirect("assistants")


# --- actions ---------------------------------------------------------------------------


class ActionMixin(AssistantMixin):
    manage_required = True

    def get_action(self, assistant):
        try:
            return selectors.action_get(
                organization=self.organization, assistant=assistant, action_id=self.kwargs["action_id"]
            )
        except NotFound:
            raise Http404("Not found.") from None


def _action_form_data(values: dict) -> dict:
    """Form data from an action's fields (or an OpenAPI import's)."""
    return {
        "name": values.get("name", ""),
        "description": values.get("description", ""),
        "method": values.get("method", "GET"),
        "url_template": values.get("url_template", ""),
        "parameters": json.dumps(values.get("parameters") or {}, indent=2),
        "requires_verified_visitor": values.get("requires_verified_visitor", False),
        "is_active": values.get("is_active", True),
    }


class ActionFormView(ActionMixin, TemplateView):
    """Create (no `action_id`) or edit an action; "Prefill" fills the form from an OpenAPI
    operation without saving anything."""

    template_name = "assistants/action_form.html"

    def _render(self, assistant, action, form, import_form, status=200):
        context = self.get_context_data(
            assistant=assistant,
            action=action,
            form=form,
            import_form=import_form,
            timeout=f"{settings.ACTIONS_TIMEOUT:g}",
        )
        return self.render_to_response(context, status=status)

    def _action(self, assistant):
        return self.get_action(assistant) if "action_id" in self.kwargs else None

    def get(self, request, pk, action_id=None):
        assistant = self.get_assistant()
        action = self._action(assistant)
        header_names = action.header_names if action else []
        initial = _action_form_data(action.__dict__) if action else {"method": "GET", "is_active": True}
        form = ActionForm(initial=initial, header_names=header_names)
        return self._render(assistant, action, form, ActionImportForm())

    def post(self, request, pk, action_id=None):
        assistant = self.get_assistant()
        action = self._action(assistant)
        header_names = action.header_names if action else []
        if "prefill" in request.POST:
            import_form = ActionImportForm(request.POST)
            form = ActionForm(initial={"method": "GET", "is_active": True}, header_names=header_names)
            if import_form.is_valid():
                data = import_form.cleaned_data
                try:
                    prefilled = action_rules.openapi_operation_import(
                        data["document"],
                        path=data["path"],
                        method=data["import_method"],
                        base_url=data["base_url"],
                    )
                except action_rules.ActionInvalid as error:
                    field = {"path": "path", "method": "import_method", "base_url": "base_url"}
                    import_form.add_error(field.get(error.field, "document"), error.message)
                else:
                    form = ActionForm(initial=_action_form_data(prefilled), header_names=header_names)
                    messages.info(request, "Prefilled from the OpenAPI operation: review it, then save.")
            return self._render(assistant, action, form, import_form)
        form = ActionForm(request.POST, header_names=header_names)
        if not form.is_valid():
            return self._render(assistant, action, form, ActionImportForm(), status=400)
        data = dict(form.cleaned_data)
        headers = data.pop("headers")
        removed = data.pop("remove_headers", [])
        with service_errors(form) as failure:
            if action is None:
                action = services.action_create(
                    organization=self.organization, assistant=assistant, headers=headers, **data
                )
                self.audit(
                    "action.created",
                    target=action,
                    changes={
                        "name": action.name,
                        "assistant": str(assistant.pk),
                        "headers": action.header_names,
                    },
                )
                messages.success(request, f"Action “{action.name}” added.")
            else:
                changes = {key: value for key, value in data.items() if getattr(action, key) != value}
                changes = {
                    key: [str(getattr(action, key))[:200], str(value)[:200]] for key, value in changes.items()
                }
                if headers or removed:
                    changes["headers"] = sorted({*headers, *removed}, key=str.lower)
                services.action_update(
                    action=action, headers={**{name: None for name in removed}, **headers}, **data
                )
                self.audit("action.updated", target=action, changes=changes)
                messages.success(request, f"Action “{action.name}” saved.")
        if failure:
            return self._render(assistant, action, form, ActionImportForm(), status=400)
        return redirect("assistant-edit", pk=assistant.pk)


class ActionDeleteView(ActionMixin, TemplateView):
    template_name = "assistants/action_delete.html"
    title = "Delete action"

    def get_context_data(self, **kwargs):
        assistant = self.get_assistant()
        return {
            **super().get_context_data(**kwargs),
            "assistant": assistant,
            "action": self.get_action(assistant),
        }

    def post(self, request, pk, action_id):
        assistant = self.get_assistant()
        action = self.get_action(assistant)
        services.action_delete(action=action)
        self.audit(
            "action.deleted", target_type="action", changes={"id": str(action_id), "name": action.name}
        )
        messages.success(request, f"Action “{action.name}” deleted.")
        return redirect("assistant-edit", pk=assistant.pk)


# --- Settings › AI model -------------------------------------------------------------------


class ModelConnectionMixin(OrganizationMixin):
    nav = "settings"
    manage_required = True

    def get_connection(self):
        try:
            return llm_models.connection_get(organization=self.organization, connection_id=self.kwargs["pk"])
        except NotFound:
            raise Http404("Not found.") from None


class ModelSettingsView(ModelConnectionMixin, FormView):
    """The models this organization brings (owners and admins); each one appears in every
    assistant's model picker. Keys are write-only: the page shows only their last 4 characters."""

    template_name = "assistants/settings_ai_model.html"
    form_class = ModelConnectionForm
    title = "AI model"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            settings_tab="ai-model",
            connections=llm_models.connection_list(organization=self.organization),
            providers=llm_models.PROVIDERS,
            server_model=settings.LLM_MODEL.strip(),
            server_models=[name for name in llm_models.models_allowed() if name != llm_models.OFFLINE],
        )
        return context

    def form_valid(self, form):
        with service_errors(form) as failure:
            connection = llm_models.connection_create(organization=self.organization, **form.cleaned_data)
        if failure:
            return self.form_invalid(form)
        self.audit(
            "ai_model.created",
            target=connection,
            changes={
                "name": connection.name,
                "base_url": connection.base_url,
                "api_key": "set" if connection.api_key_hint else "",
            },
        )
        messages.success(
            self.request,
            f"{connection.name} added: pick it in an assistant's LLM model, then test the connection.",
        )
        return redirect("settings-ai-model")


class ModelConnectionUpdateView(ModelConnectionMixin, FormView):
    template_name = "assistants/settings_ai_model_edit.html"
    form_class = ModelConnectionUpdateForm
    title = "AI model"

    def get_initial(self):
        connection = self.get_connection()
        return {"base_url": connection.base_url, "label": connection.label}

    def get_context_data(self, **kwargs):
        return {
            **super().get_context_data(**kwargs),
            "settings_tab": "ai-model",
            "connection": self.get_connection(),
        }

    def form_valid(self, form):
        connection = self.get_connection()
        with service_errors(form) as failure:
            llm_models.connection_update(connection=connection, **form.cleaned_data)
        if failure:
            return self.form_invalid(form)
        changes = {"base_url": connection.base_url, "label": connection.label}
        if form.cleaned_data["api_key"]:
            changes["api_key"] = "replaced"
        self.audit("ai_model.updated", target=connection, changes=changes)
        messages.success(self.request, f"{connection.name} saved.")
        return redirect("settings-ai-model")


class ModelConnectionDeleteView(ModelConnectionMixin, View):
    def post(self, request, pk):
        connection = self.get_connection()
        llm_models.connection_delete(connection=connection)
        self.audit(
            "ai_model.deleted",
            target_type="modelconnection",
            changes={"id": str(pk), "name": connection.name},
        )
        messages.success(
            request, f"{connection.name} removed; assistants that used it answer with the server default."
        )
        return redirect("settings-ai-model")
