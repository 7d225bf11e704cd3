"""Dashboard: the knowledge base (files, web pages, Q&A pairs) and a retrieval tester."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views import View
from django.views.generic import FormView, TemplateView

from assistants import selectors as assistant_selectors
from core.dashboard import paginate, querystring_without_page, service_errors
from core.errors import NotFound
from knowledge import selectors, services
from knowledge.forms import (
    FileUploadForm,
    KnowledgeSettingsForm,
    QAForm,
    RetrievalTestForm,
    SourceFilterForm,
    UrlForm,
    knowledge_embedder_choices,
)
from knowledge.models import KnowledgeSource
from organizations import audit as audit_log
from organizations.dashboard import OrganizationMixin

IN_PROGRESS = (KnowledgeSource.Status.PENDING, KnowledgeSource.Status.PROCESSING)


class KnowledgeMixin(OrganizationMixin):
    nav = "knowledge"

    def assistants(self):
        return assistant_selectors.assistant_list(organization=self.organization)

    def get_source(self, kind: str | None = None) -> KnowledgeSource:
        try:
            return selectors.source_get(
                organization=self.organization, source_id=self.kwargs["pk"], kind=kind
            )
        except NotFound:
            raise Http404("Not found.") from None

    def require_manage(self):
        if not self.membership.can_manage:
            raise PermissionDenied("Only owners and admins can change the knowledge base.")


def _already_there(request, exists: services.SourceExists) -> None:
    """The flash for something the knowledge already has: its title, when it was added, and a
    link to it (nothing new was stored)."""
    messages.info(
        request,
        format_html(
            '{} <a href="{}">Open it</a>',
            exists.message,
            reverse("knowledge-source", kwargs={"pk": exists.source.pk}),
        ),
    )


class KnowledgeListView(KnowledgeMixin, TemplateView):
    template_name = "knowledge/knowledge.html"
    title = "Knowledge"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        filters = SourceFilterForm(self.request.GET or None)
        sources = selectors.source_list(organization=self.organization).select_related("assistant")
        if filters.is_valid():
            data = filters.cleaned_data
            if data["kind"]:
                sources = sources.filter(kind=data["kind"])
            if data["status"]:
                sources = sources.filter(status=data["status"])
            if data["q"]:
                sources = sources.filter(
                    Q(title__icontains=data["q"])
                    | Q(question__icontains=data["q"])
                    | Q(url__icontains=data["q"])
                )
        assistants = self.assistants()
        context.update(
            page_obj=paginate(self.request, sources),
            query=querystring_without_page(self.request),
            filters=filters if filters.is_bound else SourceFilterForm(),
            filtered=bool(
                self.request.GET.get("kind") or self.request.GET.get("status") or self.request.GET.get("q")
            ),
            # "Turn into Q&A" on the overview links here with the question filled in.
            qa_form=kwargs.get("qa_form")
            or QAForm(
                assistants=assistants,
                initial={
                    "question": self.request.GET.get("question", "")[:2000],
                    "made_from": self.request.GET.get("question", "")[:2000],
                },
            ),
            file_form=kwargs.get("file_form") or FileUploadForm(assistants=assistants),
            url_form=kwargs.get("url_form") or UrlForm(assistants=assistants, initial={"max_pages": 20}),
            retrieval_form=RetrievalTestForm(assistants=assistants),
            in_progress=IN_PROGRESS,
        )
        return context


class QACreateView(KnowledgeListView):
    def post(self, request):
        self.require_manage()
        form = QAForm(request.POST, assistants=self.assistants())
        if form.is_valid():
            with service_errors(form) as failure:
                qa = services.qa_create(
                    organization=self.organization,
                    question=form.cleaned_data["question"],
                    answer=form.cleaned_data["answer"],
                    tags=form.cleaned_data["tags"],
                    assistant=form.cleaned_data["assistant"],
                    source="dashboard",
                    made_from_question=form.cleaned_data["made_from"],
                )
            if isinstance(failure.error, services.SourceExists):
                _already_there(request, failure.error)
                return redirect("knowledge")
            if not failure:
                self.audit("knowledge.created", target=qa, changes={"kind": qa.kind})
                messages.success(request, f"Q&A pair added — assistants can answer “{qa.question[:80]}” now.")
                return redirect("knowledge")
        return self.render_to_response(self.get_context_data(qa_form=form))


class FileUploadView(KnowledgeListView):
    """Several files at once (drag and drop or the file picker); each is stored and queued."""

    def post(self, request):
        self.require_manage()
        form = FileUploadForm(request.POST, request.FILES, assistants=self.assistants())
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(file_form=form))
        added, requeued, refused = [], [], []
        for uploaded in form.cleaned_data["files"]:
            started = timezone.now()
            with service_errors() as failure:
                source = services.file_source_create(
                    organization=self.organization,
                    title="",
                    file_type="",
                    uploaded_file=uploaded,
                    assistant=form.cleaned_data["assistant"],
                )
            if isinstance(failure.error, services.SourceExists):
                _already_there(request, failure.error)
            elif failure:
                refused.append(f"{uploaded.name}: {failure.message}")
            elif source.created_at < started:  # the same file had failed: this upload retries it
                requeued.append(source)
            else:
                added.append(source.file_name)
            if not failure:
                self.audit(
                    "knowledge.created",
                    target=source,
                    changes={"kind": source.kind, "file_name": source.file_name},
                )
        for source in requeued:
            messages.success(
                request,
                f"“{source.display_title[:80]}” had failed; this upload replaces it and it is queued again.",
            )
        if added:
            messages.success(
                request,
                f"{len(added)} file{'s' if len(added) != 1 else ''} uploaded ({', '.join(added)}). "
                "Each becomes answerable once its status is Ready.",
            )
        for refusal in refused:
            messages.error(request, refusal)
        return redirect("knowledge")


class UrlCreateView(KnowledgeListView):
    def post(self, request):
        self.require_manage()
        form = UrlForm(request.POST, assistants=self.assistants())
        if form.is_valid():
            data = form.cleaned_data
            started = timezone.now()
            with service_errors(form) as failure:
                source = services.url_source_create(
                    organization=self.organization,
                    url=data["url"],
                    title=data["title"],
                    assistant=data["assistant"],
                    crawl=data["crawl"],
                    max_pages=data["max_pages"] or 1,
                    sync_interval_hours=data["sync_interval_hours"],
                )
            if isinstance(failure.error, services.SourceExists):
                _already_there(request, failure.error)
                return redirect("knowledge")
            if not failure:
                self.audit(
                    "knowledge.created", target=source, changes={"kind": source.kind, "url": source.url}
                )
            if not failure and source.created_at < started:  # it had failed: queued again
                messages.success(request, f"“{source.display_title[:80]}” had failed; it is queued again.")
                return redirect("knowledge")
            if not failure:
                what = f"up to {source.max_pages} pages of {source.url}" if source.crawl else source.url
                messages.success(request, f"Fetching {what}. Its status updates here on its own.")
                return redirect("knowledge")
        return self.render_to_response(self.get_context_data(url_form=form))


class SourceRetryView(KnowledgeMixin, View):
    def post(self, request, pk):
        self.require_manage()
        source = self.get_source()
        with service_errors(request=request) as failure:
            services.source_retry(source=source)
        if not failure:
            messages.success(request, f"“{source.display_title[:80]}” is queued again.")
        if request.POST.get("back") == "source":
            return redirect("knowledge-source", pk=source.pk)
        return redirect("knowledge")


class SourceDetailView(KnowledgeMixin, FormView):
    """A source's status, error and documents; for a Q&A pair, its editor."""

    template_name = "knowledge/source_detail.html"
    form_class = QAForm
    title = "Knowledge source"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "assistants": self.assistants()}

    def get_initial(self):
        source = self.get_source()
        return {
            "question": source.question,
            "answer": source.answer,
            "tags": ", ".join(source.tags or []),
            "assistant": str(source.assistant_id or ""),
        }

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        source = self.get_source()
        context.update(
            source=source, documents=source.documents.order_by("key")[:200], in_progress=IN_PROGRESS
        )
        return context

    def form_valid(self, form):
        self.require_manage()
        source = self.get_source(kind=KnowledgeSource.Kind.QA)
        changes = audit_log.model_changes(
            source, {name: form.cleaned_data[name] for name in ("question", "answer", "tags")}
        )
        with service_errors(form) as failure:
            services.qa_update(
                source=source,
                question=form.cleaned_data["question"],
                answer=form.cleaned_data["answer"],
                tags=form.cleaned_data["tags"],
            )
        if failure:
            return self.form_invalid(form)
        self.audit("knowledge.updated", target=source, changes={"kind": source.kind, **changes})
        messages.success(self.request, "Q&A pair saved. Answers use the new text right away.")
        return redirect("knowledge-source", pk=source.pk)


class SourceRowView(KnowledgeMixin, TemplateView):
    """One row of the sources table; rows still processing poll this every 2 s."""

    template_name = "knowledge/_source_row.html"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "source": self.get_source(), "in_progress": IN_PROGRESS}


class SourceDeleteView(KnowledgeMixin, TemplateView):
    template_name = "knowledge/source_delete.html"
    manage_required = True
    title = "Delete source"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "source": self.get_source()}

    def post(self, request, pk):
        source = self.get_source()
        services.source_delete(source=source)
        self.audit(
            "knowledge.deleted", target_type="knowledgesource", changes={"id": str(pk), "kind": source.kind}
        )
        messages.success(
            request, f"“{source.display_title[:80]}” deleted with its {source.chunk_count} chunks."
        )
        return redirect("knowledge")


class KnowledgeSettingsView(OrganizationMixin, TemplateView):
    """Settings › Knowledge: the embedder the organization's knowledge is searched with
    (owners and admins). A change re-embeds the knowledge in the worker; the page shows the
    progress (polled) until the switch is complete."""

    template_name = "knowledge/settings_knowledge.html"
    manage_required = True
    nav = "settings"
    title = "Knowledge"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        organization = self.organization
        selected = organization.knowledge_embedder_next or organization.knowledge_embedder
        context.setdefault("form", KnowledgeSettingsForm(initial={"knowledge_embedder": selected}))
        context.update(settings_tab="knowledge", **self.progress_context())
        return context

    def progress_context(self) -> dict:
        progress = services.embedder_switch_progress(organization=self.organization)
        names = dict(knowledge_embedder_choices())
        percent = int(100 * progress["done"] / progress["total"]) if progress["total"] else 100
        return {
            "progress": progress,
            "percent": percent,
            "current_name": names.get(progress["current"], progress["current"]),
            "next_name": names.get(progress["next"], progress["next"]),
        }

    def post(self, request):
        form = KnowledgeSettingsForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        choice = form.cleaned_data["knowledge_embedder"]
        before = self.organization.knowledge_embedder_next or self.organization.knowledge_embedder
        with service_errors(form) as failure:
            outcome = services.embedder_switch_start(organization=self.organization, choice=choice)
        if failure:
            return self.render_to_response(self.get_context_data(form=form))
        if outcome != "unchanged":
            self.audit(
                "knowledge.embedder_changed",
                target=self.organization,
                changes={"knowledge_embedder": [before, choice], "outcome": outcome},
            )
        messages.success(
            request,
            {
                "unchanged": "Nothing changed.",
                "cancelled": "Switch cancelled: the knowledge stays on the current model.",
                "switched": "Saved.",
                "started": "Re-embedding the knowledge in the background; search uses the current "
                "model until it is done.",
            }[outcome],
        )
        return redirect("settings-knowledge")


class KnowledgeSettingsProgressView(KnowledgeSettingsView):
    """The progress fragment the settings page polls while a switch runs."""

    template_name = "knowledge/_embedder_progress.html"

    def post(self, request):
        raise Http404("Not found.")
