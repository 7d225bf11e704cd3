"""Dashboard: the conversations inbox, privacy settings and the knowledge page's tester.

(The overview, the dashboard's home, composes every app: `supportai/overview.py`.)
"""

from __future__ import annotations

import csv
import json
import uuid

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View
from django.views.generic import FormView, TemplateView

from assistants import llm_models
from assistants import selectors as assistant_selectors
from assistants.views import AssistantMixin
from chat import selectors, services
from chat.forms import (
    InboxFilterForm,
    NotificationsForm,
    PlaygroundForm,
    PrivacySettingsForm,
    PrivacySubjectForm,
    ReplyForm,
)
from chat.models import Conversation
from chat.services import privacy as privacy_services
from chat.services.model_test import model_connection_test
from core.dashboard import paginate, querystring_without_page, service_errors
from core.errors import NotFound
from knowledge.forms import RetrievalTestForm
from knowledge.views import KnowledgeMixin
from organizations import audit as audit_log
from organizations import selectors as organization_selectors
from organizations import services as organization_services
from organizations.dashboard import OrganizationMixin

# --- Inbox -----------------------------------------------------------------------------------


def conversation_label(conversation: Conversation) -> str:
    """Who the operator is talking to, in the words they would use."""
    context = conversation.user_context
    traits = (context.traits if context else None) or {}
    metadata = conversation.metadata or {}
    for candidate in (traits.get("name"), metadata.get("name"), context and context.user_reference):
        if candidate:
            return str(candidate)
    if conversation.customer_id:
        return conversation.customer_id
    if conversation.title:
        return conversation.title
    if metadata.get("source") == "playground":
        return "Playground test"
    if conversation.visitor_id.startswith("preview_"):
        return "Widget preview (dashboard)"
    return f"Visitor {conversation.visitor_id[-6:] or str(conversation.pk)[:6]}"


class InboxMixin(OrganizationMixin):
    nav = "inbox"
    title = "Inbox"

    def get_conversation(self) -> Conversation:
        try:
            return selectors.conversation_get(
                organization=self.organization, conversation_id=self.kwargs["pk"]
            )
        except NotFound:
            raise Http404("Not found.") from None

    def inbox_filters(self) -> tuple[InboxFilterForm, dict | None]:
        """The filter form from the query string and the `conversation_list` criteria it gives:
        the inbox list and its CSV export (whose link carries the same query) select alike.
        Criteria are None when a filter is not valid (a malformed date, a search over 200
        characters): dropping it would list, or export, more than the operator asked for."""
        filters = InboxFilterForm(
            self.request.GET or None,
            assistants=assistant_selectors.assistant_list(organization=self.organization),
        )
        if not filters.is_bound:
            return filters, {}
        if not filters.is_valid():
            return filters, None
        data = filters.cleaned_data
        return filters, {
            "assistant": data["assistant"],
            "handoff_status": data["status"] or None,
            "kind": data["kind"] or None,
            "unanswered": data["unanswered"] or None,
            "feedback": data["feedback"] or None,
            "date_from": data["date_from"],
            "date_to": data["date_to"],
            "search": data["q"] or None,
            "assigned_to": self.request.user if data["mine"] else None,
            # "Assigned to me" is the operator's open work: resolved ones only when the
            # status filter asks for them.
            "open_only": (data["mine"] and not data["status"]) or None,
        }


class InboxView(InboxMixin, TemplateView):
    """The conversation list with its filters; with a `pk`, that conversation beside it."""

    template_name = "chat/inbox.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        filters, criteria = self.inbox_filters()
        if criteria is None:
            conversations = selectors.conversation_list(organization=self.organization).none()
        else:
            conversations = selectors.conversation_list(organization=self.organization, **criteria)
        criteria = criteria or {}
        conversation = self.get_conversation() if "pk" in self.kwargs else None
        page_obj = paginate(self.request, conversations)
        last_messages = selectors.conversation_last_messages(
            organization=self.organization, conversation_ids=[item.pk for item in page_obj]
        )
        for item in page_obj:
            item.label = conversation_label(item)
            item.last_message = last_messages.get(item.pk)
        if conversation is not None:
            services.conversation_user_context(conversation=conversation)
            conversation.label = conversation_label(conversation)
        context.update(
            filters=filters if filters.is_bound else InboxFilterForm(assistants=filters.assistants.values()),
            filtered=filters.is_bound and (bool(filters.errors) or any(criteria.values())),
            queue=criteria.get("handoff_status") == Conversation.HandoffStatus.WAITING,
            mine=criteria.get("assigned_to") is not None,
            notifications_form=NotificationsForm(
                initial={"handoff_email": self.membership.notify_handoff_email}
            ),
            page_obj=page_obj,
            query=querystring_without_page(self.request),
            querystring=self.request.GET.urlencode(),
            conversation=conversation,
        )
        if conversation is not None:
            transcript = list(selectors.message_list(conversation=conversation).select_related("author"))
            context.update(
                transcript=transcript,
                last_message_id=transcript[-1].pk if transcript else "",
                reply_form=ReplyForm(),
                traits=(conversation.user_context.traits if conversation.user_context else {}) or {},
                members=organization_selectors.membership_list(organization=self.organization),
                notes=list(selectors.conversation_notes(conversation=conversation)),
                saved_replies=[
                    {
                        "shortcut": saved.shortcut,
                        "title": saved.title,
                        "text": services.saved_reply_render(body=saved.body, conversation=conversation),
                    }
                    for saved in selectors.saved_reply_list(organization=self.organization)
                ],
                # What the page sent, without the fields it left empty (a direct visit has no
                # referrer: the widget sends null, which read "None").
                metadata={
                    key: value
                    for key, value in (conversation.metadata or {}).items()
                    if value not in (None, "")
                },
            )
        return context


CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """A spreadsheet-safe cell: text that a spreadsheet would run as a formula is quoted."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(CSV_FORMULA_PREFIXES) else text


class InboxExportView(InboxMixin, View):
    """The filtered conversations' transcripts as CSV (one row per message)."""

    max_conversations = 2000

    def get(self, request):
        filters, criteria = self.inbox_filters()
        if criteria is None:
            problems = "; ".join(
                f"{filters.fields[name].label}: {' '.join(errors)}"
                if name in filters.fields
                else " ".join(errors)
                for name, errors in filters.errors.items()
            )
            return HttpResponseBadRequest(
                f"The inbox filters are not valid ({problems}).", content_type="text/plain; charset=utf-8"
            )
        conversations = selectors.conversation_list(organization=self.organization, **criteria)[
            : self.max_conversations
        ]
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="conversations.csv"'
        writer = csv.writer(response)
        writer.writerow(
            [
                "conversation",
                "type",
                "assistant",
                "who",
                "status",
                "message_time",
                "role",
                "content",
                "answered",
                "feedback",
            ]
        )
        for conversation in conversations:
            label = conversation_label(conversation)
            for message in selectors.message_list(conversation=conversation):
                writer.writerow(
                    [
                        csv_cell(value)
                        for value in (
                            conversation.pk,
                            conversation.kind,
                            conversation.assistant.name,
                            label,
                            conversation.handoff_status,
                            message.created_at.isoformat(),
                            message.role,
                            message.content,
                            message.answered if message.role == "assistant" else "",
                            {1: "up", -1: "down"}.get(message.feedback, ""),
                        )
                    ]
                )
        return response


class TranscriptPollView(InboxMixin, View):
    """Messages newer than `after`, appended by the open conversation every few seconds."""

    def get(self, request, pk):
        conversation = self.get_conversation()
        after = request.GET.get("after") or None
        try:
            new_messages = list(
                selectors.message_list(conversation=conversation, after=after).select_related("author")
            )
        except (NotFound, ValueError):
            new_messages = []
        last_id = new_messages[-1].pk if new_messages else after or ""
        response = render(
            request,
            "chat/_transcript_poll.html",
            {"conversation": conversation, "chat_messages": new_messages, "last_message_id": last_id},
        )
        return response


class ConversationActionView(InboxMixin, View):
    """Take over, hand back, resolve, reopen: the same services the API uses. Agents too:
    working the queue is their job."""

    ACTIONS = {
        "take-over": "You took over. The assistant stays quiet until you hand back.",
        "hand-back": "Handed back to the assistant.",
        "resolve": "Marked as resolved.",
        "reopen": "Reopened: it is back in the waiting queue.",
    }

    def post(self, request, pk, action):
        conversation = self.get_conversation()
        if action not in self.ACTIONS:
            raise Http404("Not found.")
        before = services.desk_state(conversation)
        if action == "take-over":
            services.handoff_take_over(conversation=conversation, user=request.user)
        elif action == "hand-back":
            services.handoff_hand_back(conversation=conversation)
        elif action == "resolve":
            services.conversation_resolve(conversation=conversation, user=request.user)
        else:
            services.conversation_reopen(conversation=conversation)
        audit_actions = {
            "take-over": "taken_over",
            "hand-back": "handed_back",
            "resolve": "resolved",
            "reopen": "reopened",
        }
        if services.desk_state(conversation) != before:  # a repeated click changed nothing
            self.audit(f"conversation.{audit_actions[action]}", target=conversation)
        messages.success(request, self.ACTIONS[action])
        return redirect(_conversation_url(conversation, request))


class ConversationAssignView(InboxMixin, View):
    """Assign to me, to another member of this organization, or to nobody."""

    def post(self, request, pk):
        conversation = self.get_conversation()
        choice = request.POST.get("assignee", "")
        if choice == "me":
            assignee = request.user
        elif choice == "":
            assignee = None
        else:
            membership = (
                organization_selectors.membership_list(organization=self.organization)
                .filter(user_id=choice if choice.isdigit() else None)
                .first()
            )
            if membership is None:  # not a member here (or not a user at all): as if unknown
                raise Http404("Not found.")
            assignee = membership.user
        before = conversation.assigned_to
        services.conversation_assign(conversation=conversation, assignee=assignee)
        if before != assignee:
            self.audit(
                "conversation.assigned",
                target=conversation,
                changes={"assigned_to": [getattr(before, "email", None), getattr(assignee, "email", None)]},
            )
        messages.success(
            request,
            f"Assigned to {assignee.get_full_name() or assignee.email}." if assignee else "Unassigned.",
        )
        return redirect(_conversation_url(conversation, request))


class ConversationNoteView(InboxMixin, View):
    """A private note for the team (never shown to the visitor)."""

    def post(self, request, pk):
        conversation = self.get_conversation()
        with service_errors(request=request):
            services.conversation_note_add(
                conversation=conversation, user=request.user, body=request.POST.get("body", "")
            )
            messages.success(request, "Note added. Only your team sees it.")
        return redirect(_conversation_url(conversation, request))


class SavedRepliesView(InboxMixin, TemplateView):
    """The organization's saved replies: list, add, delete (every member: they answer)."""

    template_name = "chat/saved_replies.html"
    title = "Saved replies"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(saved_replies=selectors.saved_reply_list(organization=self.organization), errors={})
        return context

    def post(self, request):
        if request.POST.get("delete"):
            saved = (
                selectors.saved_reply_list(organization=self.organization)
                .filter(pk=_uuid_or_none(request.POST["delete"]))
                .first()
            )
            if saved is None:
                raise Http404("Not found.")
            services.saved_reply_delete(saved_reply=saved)
            messages.success(request, f"Deleted /{saved.shortcut}.")
            return redirect(reverse("inbox-saved-replies"))
        with service_errors() as failure:
            saved = services.saved_reply_create(
                organization=self.organization,
                title=request.POST.get("title", ""),
                shortcut=request.POST.get("shortcut", ""),
                body=request.POST.get("body", ""),
            )
        if failure:
            context = self.get_context_data()
            context.update(errors=failure.details or {}, form_data=request.POST)
            return render(request, self.template_name, context, status=400)
        messages.success(request, f"Saved /{saved.shortcut}. Type it in a reply to send it.")
        return redirect(reverse("inbox-saved-replies"))


def _uuid_or_none(value: str):
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class WaitingQueueView(InboxMixin, View):
    """How many wait, and the newest request: polled by every open dashboard tab (app.js)
    every few seconds to keep the Inbox badge current and announce new ones."""

    def get(self, request):
        latest = selectors.waiting_latest(organization=self.organization)
        response = JsonResponse(
            {
                "waiting": selectors.waiting_count(organization=self.organization),
                "latest": {
                    "id": str(latest["id"]),
                    "requested_at": latest["handoff_requested_at"].isoformat(),
                    "url": reverse("inbox-conversation", args=[latest["id"]]),
                }
                if latest
                else None,
            }
        )
        response["Cache-Control"] = "no-store"
        return response


class NotificationsView(InboxMixin, View):
    """A member's own choice: an email for each handoff to a person."""

    def post(self, request):
        form = NotificationsForm(request.POST)
        form.is_valid()
        organization_services.membership_notifications_set(
            membership=self.membership, handoff_email=form.cleaned_data.get("handoff_email", False)
        )
        messages.success(
            request,
            "You will get an email when a visitor waits for a person."
            if form.cleaned_data.get("handoff_email")
            else "No more handoff emails.",
        )
        return redirect(reverse("inbox"))


class OperatorReplyView(InboxMixin, View):
    def post(self, request, pk):
        conversation = self.get_conversation()
        form = ReplyForm(request.POST)
        error = ""
        if form.is_valid():
            with service_errors() as failure:
                content = services.saved_reply_expand(
                    conversation=conversation, content=form.cleaned_data["content"]
                )
                before = services.desk_state(conversation)
                with transaction.atomic():  # the take-over, the reply and its audit event, or none
                    services.operator_reply_post(
                        conversation=conversation, user=request.user, content=content
                    )
                    if services.desk_state(conversation) != before:  # replying took it over
                        self.audit("conversation.taken_over", target=conversation)
            if failure:
                error = failure.message
        else:
            error = "Write a reply first (up to 4000 characters)."
        if request.headers.get("HX-Request"):
            if error:
                response = render(request, "chat/_reply_error.html", {"error": error})
                response["X-Form-Error"] = "1"
                return response
            # The transcript's poller picks the reply up at once.
            response = HttpResponse(status=204)
            response["HX-Trigger"] = "transcript-refresh"
            return response
        if error:
            messages.error(request, error)
        return redirect(_conversation_url(conversation, request))


class OperatorTypingView(InboxMixin, View):
    """The operator is typing a reply (sent at most every 3 s while they type): the
    visitor's open widget shows "typing" until the reply or a few seconds pass."""

    def post(self, request, pk):
        services.conversation_typing_signal(conversation=self.get_conversation())
        return HttpResponse(status=204)


def _conversation_url(conversation: Conversation, request) -> str:
    url = reverse("inbox-conversation", args=[conversation.pk])
    back = request.POST.get("filters", "")
    return f"{url}?{back}" if back else url


# --- Settings > Privacy -------------------------------------------------------------------------


class PrivacySettingsView(OrganizationMixin, TemplateView):
    """The retention policy, and erasure/export of one person's data (owners and admins)."""

    template_name = "chat/settings_privacy.html"
    manage_required = True
    nav = "settings"
    title = "Privacy"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault(
            "policy_form",
            PrivacySettingsForm(
                initial={
                    "retention_days": self.organization.retention_days,
                    "keep_original_files": self.organization.keep_original_files,
                }
            ),
        )
        context.setdefault("subject_form", PrivacySubjectForm())
        context.update(settings_tab="privacy")
        return context

    def post(self, request):
        action = request.POST.get("action")
        if action == "policy":
            form = PrivacySettingsForm(request.POST)
            if not form.is_valid():
                return self.render_to_response(self.get_context_data(policy_form=form))
            changes = audit_log.model_changes(self.organization, dict(form.cleaned_data))
            organization_services.organization_privacy_update(
                organization=self.organization,
                retention_days=form.cleaned_data["retention_days"],
                keep_original_files=form.cleaned_data["keep_original_files"],
            )
            self.audit("settings.updated", target=self.organization, changes=changes)
            messages.success(request, "Privacy settings saved.")
            return redirect("settings-privacy")
        form = PrivacySubjectForm(request.POST)
        if action not in {"erase", "export"} or not form.is_valid():
            return self.render_to_response(self.get_context_data(subject_form=form))
        subject = selectors.subject_from({form.cleaned_data["kind"]: form.cleaned_data["value"]})
        if action == "export":
            self.audit("privacy.exported", target_type="person", changes={"by": subject.kind})
            document = selectors.privacy_export(organization=self.organization, subject=subject)
            response = HttpResponse(
                json.dumps(document, indent=2, ensure_ascii=False), content_type="application/json"
            )
            response["Content-Disposition"] = 'attachment; filename="personal-data-export.json"'
            response["Cache-Control"] = "no-store"
            return response
        counts = privacy_services.privacy_erase(organization=self.organization, subject=subject)
        self.audit("privacy.erased", target_type="person", changes={"by": subject.kind, **counts})
        messages.success(
            request,
            "Erased: "
            + ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in counts.items())
            + ".",
        )
        return redirect("settings-privacy")


class RetrievalTestView(KnowledgeMixin, View):
    """Knowledge › Test retrieval: what the assistant would do with a question: the passages
    it would be given, each marked relevant or not by the gate answers use, and the verdict."""

    def get(self, request):
        form = RetrievalTestForm(request.GET, assistants=self.assistants())
        check, error = None, ""
        if form.is_valid():
            with service_errors() as failure:
                check = selectors.retrieval_check(
                    organization=self.organization,
                    assistant=form.cleaned_data["assistant"],
                    question=form.cleaned_data["query"],
                )
            if failure:
                error = failure.message
        else:
            error = "Type a question to test."
        return render(
            request,
            "knowledge/_retrieval_results.html",
            {"check": check, "error": error, "query": request.GET.get("query", "")},
        )


# --- Playground ----------------------------------------------------------------------------
# An operator's chat with an assistant, under the assistant's pages (assistants/<id>/playground/)
# but driven by chat's services, so it lives here (assistants sit below chat).

PLAYGROUND_SESSION_KEY = "playground:{assistant_id}"


class PlaygroundMixin(AssistantMixin):
    """The playground is a real session of the assistant, kept per user in their session."""

    def session_key(self, assistant) -> str:
        return PLAYGROUND_SESSION_KEY.format(assistant_id=assistant.pk)

    def playground_conversation(self, assistant, *, create: bool) -> Conversation | None:
        conversation_id = self.request.session.get(self.session_key(assistant))
        conversation = None
        if conversation_id:
            try:
                conversation = selectors.conversation_get(
                    organization=self.organization, conversation_id=conversation_id
                )
            except NotFound:
                conversation = None
        if conversation is None and create:
            conversation = services.session_create(
                organization=self.organization,
                assistant=assistant,
                visitor_id=f"playground:{self.request.user.email}",
                metadata={"source": "playground", "operator": self.request.user.email},
            )
            self.request.session[self.session_key(assistant)] = str(conversation.pk)
        return conversation


class PlaygroundView(PlaygroundMixin, FormView):
    template_name = "chat/playground.html"
    form_class = PlaygroundForm
    title = "Playground"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        assistant = self.get_assistant()
        conversation = self.playground_conversation(assistant, create=False)
        context.update(
            assistant=assistant,
            conversation=conversation,
            chat_messages=selectors.message_list(conversation=conversation) if conversation else [],
            **self.offline_context(assistant),
        )
        return context

    def form_valid(self, form):
        assistant = self.get_assistant()
        error_text = ""
        with service_errors() as failure:
            conversation = self.playground_conversation(assistant, create=True)
            answer = services.message_post(
                conversation=conversation,
                content=form.cleaned_data["content"],
                verified=True,  # the team trying its own assistant
            )
        if failure:
            answer, error_text = None, failure.message
        if self.request.headers.get("HX-Request"):
            conversation = self.playground_conversation(assistant, create=False)
            turn = []
            if conversation is not None:
                turn = list(selectors.message_list(conversation=conversation))[-2:]
                if answer is not None and answer.role == "user":
                    turn = turn[-1:]
            response = self.render_to_response(
                # The note under the log says whether the assistant now stays quiet (this
                # message asked for a person, or was one unanswered question too many).
                {
                    "chat_messages": turn,
                    "error_text": error_text,
                    "conversation": conversation,
                    "handoff_refresh": True,
                    "language_hint": selectors.knowledge_language_hint(
                        organization=self.organization, answer=answer
                    ),
                },
                template_name="chat/_playground_messages.html",
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


class ModelConnectionTestView(OrganizationMixin, View):
    """Settings › AI model › Test connection (owners and admins): one tiny completion."""

    manage_required = True

    def post(self, request, pk):
        try:
            connection = llm_models.connection_get(organization=self.organization, connection_id=pk)
        except NotFound:
            raise Http404("Not found.") from None
        result = model_connection_test(connection=connection)
        if result.ok:
            messages.success(request, f"Connection works: {result.detail}")
        else:
            messages.error(request, f"{connection.name} did not answer: {result.detail}")
        return redirect("settings-ai-model")
