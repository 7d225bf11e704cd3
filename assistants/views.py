"""Dashboard: assistants (list, create, edit the persona, delete) and the playground."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.views import View
from django.views.generic import FormView, TemplateView

from assistants import selectors, services
from assistants.forms import TONES, AssistantForm, PlaygroundForm
from chat import selectors as chat_selectors
from chat import services as chat_services
from chat.models import Conversation
from supportai.api.errors import ApplicationError, NotFound
from supportai.dashboard import OrganizationMixin, form_error_apply, paginate

PLAYGROUND_SESSION_KEY = "playground:{assistant_id}"


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


class PlaygroundMixin(AssistantMixin):
    """The playground is a real session of the assistant, kept per user in their session."""

    def session_key(self, assistant) -> str:
        return PLAYGROUND_SESSION_KEY.format(assistant_id=assistant.pk)

    def playground_conversation(self, assistant, *, create: bool) -> Conversation | None:
        conversation_id = self.request.session.get(self.session_key(assistant))
        conversation = None
        if conversation_id:
            try:
                conversation = chat_selectors.conversation_get(
                    organization=self.organization, conversation_id=conversation_id
                )
            except NotFound:
                conversation = None
        if conversation is None and create:
            conversation = chat_services.session_create(
                organization=self.organization,
                assistant=assistant,
                visitor_id=f"playground:{self.request.user.email}",
                metadata={"source": "playground", "operator": self.request.user.email},
            )
            self.request.session[self.session_key(assistant)] = str(conversation.pk)
        return conversation


class PlaygroundView(PlaygroundMixin, FormView):
    template_name = "assistants/playground.html"
    form_class = PlaygroundForm
    title = "Playground"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        assistant = self.get_assistant()
        conversation = self.playground_conversation(assistant, create=False)
        context.update(
            assistant=assistant,
            conversation=conversation,
            chat_messages=chat_selectors.message_list(conversation=conversation) if conversation else [],
        )
        return context

    def form_valid(self, form):
        assistant = self.get_assistant()
        error_text = ""
        try:
            conversation = self.playground_conversation(assistant, create=True)
            answer = chat_services.message_post(
                conversation=conversation, content=form.cleaned_data["content"]
            )
        except ApplicationError as error:
            answer, error_text = None, error.detail
        if self.request.headers.get("HX-Request"):
            conversation = self.playground_conversation(assistant, create=False)
            turn = []
            if conversation is not None:
                turn = list(chat_selectors.message_list(conversation=conversation))[-2:]
                if answer is not None and answer.role == "user":
                    turn = turn[-1:]
            response = self.render_to_response(
                {"chat_messages": turn, "error_text": error_text}, template_name="assistants/_messages.html"
            )
            if error_text:
                response["X-Form-Error"] = "1"
            return response
        if error_text:
            messages.error(self.request, error_text)
        return redirect("assistant-playground", pk=assistant.pk)

    def render_to_response(self, context, template_name=None, **response_kwargs):
        if template_name:
            return self.response_class(
                request=self.request, template=[template_name], context=context, using=self.template_engine
            )
        return super().render_to_response(context, **response_kwargs)


class PlaygroundResetView(PlaygroundMixin, View):
    def post(self, request, pk):
        assistant = self.get_assistant()
        request.session.pop(self.session_key(assistant), None)
        return redirect("assistant-playground", pk=assistant.pk)
