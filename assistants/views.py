"""Dashboard: assistants (list, create, edit the persona, delete).

(The playground, a chat with the assistant, is chat's: `chat.views.PlaygroundView`.)
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.views.generic import FormView, TemplateView

from assistants import selectors, services
from assistants.forms import TONES, AssistantForm
from core.errors import ApplicationError, NotFound
from supportai.dashboard import OrganizationMixin, form_error_apply, paginate


class AssistantMixin(OrganizationMixin):
    nav = "assistants"

    def get_assistant(self):
        try:
            return selectors.assistant_get(organization=self.organization, assistant_id=self.kwargs["pk"])
        except NotFound:
            raise Http404("Not found.") from None


class AssistantListView(AssistantMixin, TemplateView):
    template_name = "assistants/assistant_list.html"
    title = "Assistants"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["page_obj"] = paginate(self.request, selectors.assistant_list(organization=self.organization))
        return context


class AssistantCreateView(AssistantMixin, FormView):
    template_name = "assistants/assistant_form.html"
    form_class = AssistantForm
    manage_required = True
    title = "New assistant"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "tones": TONES}

    def form_valid(self, form):
        data = dict(form.cleaned_data)
        try:
            assistant = services.assistant_create(organization=self.organization, **data)
        except ApplicationError as error:
            form_error_apply(form, error)
            return self.form_invalid(form)
        messages.success(
            self.request, f"“{assistant.name}” created. Add knowledge, then try it in the playground."
        )
        return redirect("assistant-playground", pk=assistant.pk)


class AssistantUpdateView(AssistantMixin, FormView):
    template_name = "assistants/assistant_form.html"
    form_class = AssistantForm
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
        }

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "assistant": self.get_assistant(), "tones": TONES}

    def form_valid(self, form):
        if not self.membership.can_manage:
            messages.error(self.request, "Only owners and admins can change assistants.")
            return redirect("assistant-edit", pk=self.kwargs["pk"])
        assistant = self.get_assistant()
        try:
            services.assistant_update(assistant=assistant, **form.cleaned_data)
        except ApplicationError as error:
            form_error_apply(form, error)
            return self.form_invalid(form)
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
        messages.success(request, f"“{assistant.name}” deleted.")
        return redirect("assistants")
