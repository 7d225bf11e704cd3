"""`/api/v1/knowledge/...`: files, URLs and Q&A pairs (create, list, get, delete, retry) and search."""

from __future__ import annotations

import uuid

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response

from assistants.models import Assistant
from core.api.parsers import GuardedFormParser, GuardedJSONParser, GuardedMultiPartParser
from core.errors import PayloadTooLarge, ValidationFailed
from knowledge import retrieval, selectors, services
from knowledge.models import KnowledgeSource
from knowledge.serializers import (
    FileSourceCreateSerializer,
    FileSourceSerializer,
    KnowledgeSettingsSerializer,
    PassageSerializer,
    QaSourceCreateSerializer,
    QaSourceSerializer,
    SearchQuerySerializer,
    UrlSourceCreateSerializer,
    UrlSourceSerializer,
)
from organizations.api_base import OrganizationAPIView, OrganizationGenericAPIView
from organizations.selectors import api_key_may_administer

ASSISTANT_FILTER = OpenApiParameter(
    "assistant_id", str, description="Only this assistant's and org-wide sources"
)


def _assistant(*, organization, assistant_id):
    if not assistant_id:
        return None
    try:
        assistant_id = uuid.UUID(str(assistant_id))
    except ValueError:  # was a 500 (found by schemathesis)
        raise ValidationFailed(
            "Unknown assistant_id.", details={"assistant_id": ["Must be a UUID."]}
        ) from None
    assistant = Assistant.objects.for_organization(organization).filter(pk=assistant_id).first()
    if assistant is None:
        raise ValidationFailed("Unknown assistant_id.", details={"assistant_id": ["No such assistant."]})
    return assistant


class _SourceListCreateApi(OrganizationGenericAPIView):
    model = KnowledgeSource
    kind: str = ""
    create_serializer_class = None

    def get_queryset(self):
        assistant_id = self.request.query_params.get("assistant_id")
        assistant = (
            _assistant(organization=self.organization, assistant_id=assistant_id) if assistant_id else None
        )
        return selectors.source_list(organization=self.organization, assistant=assistant, kind=self.kind)

    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def _add(self, create, **data) -> tuple[KnowledgeSource, bool]:
        """(source, added): `create`'s new (or re-queued) source, or the one already in the
        knowledge that this request would have duplicated (`SourceExists`): answered 200 with it,
        in the success shape, so a client that adds its files and FAQ again (an import re-run, a
        retried request) gets the existing source's id instead of an error or a second copy."""
        try:
            return create(organization=self.organization, **data), True
        except services.SourceExists as exists:
            return exists.source, False

    def _input(self, request) -> dict:
        serializer = self.create_serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data["assistant"] = _assistant(
            organization=self.organization, assistant_id=data.pop("assistant_id", None)
        )
        return data


class _SourceDetailApi(OrganizationGenericAPIView):
    model = KnowledgeSource
    kind: str = ""

    def get_object(self):
        return selectors.source_get(
            organization=self.organization, source_id=self.kwargs["pk"], kind=self.kind
        )

    def get(self, request, *args, **kwargs):
        return Response(self.get_serializer(self.get_object()).data)

    def delete(self, request, *args, **kwargs):
        source = self.get_object()
        services.source_delete(source=source)
        self.audit(
            "knowledge.deleted",
            target_type="knowledgesource",
            changes={"id": str(source.pk), "kind": source.kind},
        )
        return Response(None, status=status.HTTP_200_OK)


class _SourceRetryApi(_SourceDetailApi):
    http_method_names = ["post", "options"]

    def post(self, request, *args, **kwargs):
        source = services.source_retry(source=self.get_object())
        return Response(self.get_serializer(source).data, status=status.HTTP_202_ACCEPTED)


# --- files -------------------------------------------------------------------------------
class FileSourceListCreateApi(_SourceListCreateApi):
    kind = KnowledgeSource.Kind.FILE
    serializer_class = FileSourceSerializer
    create_serializer_class = FileSourceCreateSerializer
    parser_classes = [GuardedMultiPartParser, GuardedFormParser]

    @extend_schema(
        operation_id="knowledge_files_list",
        parameters=[ASSISTANT_FILTER],
        responses=FileSourceSerializer(many=True),
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="knowledge_files_create",
        request={"multipart/form-data": FileSourceCreateSerializer},
        responses={202: FileSourceSerializer, 200: FileSourceSerializer},
        description="Upload a PDF, text, Markdown, HTML or DOCX file. Answers 202 with status `pending`; "
        "a worker moves it to `processing`, then `ready` or `failed` (with `error`). The same bytes "
        "already in this scope (organization-wide, or the assistant's): 200 with that source, nothing "
        "stored; if that source failed, this upload replaces its file and it is queued again (202).",
    )
    def post(self, request, *args, **kwargs):
        # Refuse an oversized body before it is read (the multipart parser would spool it to disk).
        declared = request.META.get("CONTENT_LENGTH") or "0"
        limit = settings.KNOWLEDGE_MAX_FILE_BYTES
        if declared.isdigit() and int(declared) > limit + 1024 * 1024:
            raise PayloadTooLarge(f"The upload is larger than the {limit // (1024 * 1024)} MB limit.")
        data = self._input(request)
        source, added = self._add(
            services.file_source_create,
            title=data["title"],
            file_type=data["file_type"],
            uploaded_file=data["file"],
            assistant=data["assistant"],
        )
        if not added:
            return Response(FileSourceSerializer(source).data, status=status.HTTP_200_OK)
        self.audit(
            "knowledge.created", target=source, changes={"kind": source.kind, "file_name": source.file_name}
        )
        return Response(FileSourceSerializer(source).data, status=status.HTTP_202_ACCEPTED)


class FileSourceDetailApi(_SourceDetailApi):
    kind = KnowledgeSource.Kind.FILE
    serializer_class = FileSourceSerializer

    @extend_schema(operation_id="knowledge_files_retrieve")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(operation_id="knowledge_files_destroy", responses={200: None})
    def delete(self, request, *args, **kwargs):
        return super().delete(request, *args, **kwargs)


class FileSourceRetryApi(_SourceRetryApi):
    kind = KnowledgeSource.Kind.FILE
    serializer_class = FileSourceSerializer

    @extend_schema(operation_id="knowledge_files_retry", request=None, responses={202: FileSourceSerializer})
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


# --- URLs --------------------------------------------------------------------------------
class UrlSourceListCreateApi(_SourceListCreateApi):
    kind = KnowledgeSource.Kind.URL
    serializer_class = UrlSourceSerializer
    create_serializer_class = UrlSourceCreateSerializer
    parser_classes = [GuardedJSONParser, GuardedFormParser, GuardedMultiPartParser]

    @extend_schema(
        operation_id="knowledge_urls_list",
        parameters=[ASSISTANT_FILTER],
        responses=UrlSourceSerializer(many=True),
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="knowledge_urls_create",
        request=UrlSourceCreateSerializer,
        responses={202: UrlSourceSerializer, 200: UrlSourceSerializer},
        description="Add a web page (or, with `crawl`, up to `max_pages` pages of the same site, honouring "
        "robots.txt and sitemap.xml). Internal addresses are refused with 400. The same URL (and crawl "
        "setting) already in this scope: 200 with that source, nothing stored; if it failed, it is "
        "queued again with this request's options (202).",
    )
    def post(self, request, *args, **kwargs):
        data = self._input(request)
        source, added = self._add(services.url_source_create, **data)
        if not added:
            return Response(UrlSourceSerializer(source).data, status=status.HTTP_200_OK)
        self.audit("knowledge.created", target=source, changes={"kind": source.kind, "url": source.url})
        return Response(UrlSourceSerializer(source).data, status=status.HTTP_202_ACCEPTED)


class UrlSourceDetailApi(_SourceDetailApi):
    kind = KnowledgeSource.Kind.URL
    serializer_class = UrlSourceSerializer

    @extend_schema(operation_id="knowledge_urls_retrieve")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(operation_id="knowledge_urls_destroy", responses={200: None})
    def delete(self, request, *args, **kwargs):
        return super().delete(request, *args, **kwargs)


class UrlSourceRetryApi(_SourceRetryApi):
    kind = KnowledgeSource.Kind.URL
    serializer_class = UrlSourceSerializer

    @extend_schema(operation_id="knowledge_urls_retry", request=None, responses={202: UrlSourceSerializer})
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


# --- Q&A ---------------------------------------------------------------------------------
class QaSourceListCreateApi(_SourceListCreateApi):
    kind = KnowledgeSource.Kind.QA
    serializer_class = QaSourceSerializer
    create_serializer_class = QaSourceCreateSerializer
    parser_classes = [GuardedJSONParser, GuardedFormParser, GuardedMultiPartParser]

    @extend_schema(
        operation_id="knowledge_qa_list",
        parameters=[ASSISTANT_FILTER],
        responses=QaSourceSerializer(many=True),
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="knowledge_qa_create",
        request=QaSourceCreateSerializer,
        responses={201: QaSourceSerializer, 200: QaSourceSerializer},
        description="A question and its answer; searchable as soon as this returns (status `ready`). The "
        "same question and answer already in this scope: 200 with that pair, nothing stored.",
    )
    def post(self, request, *args, **kwargs):
        data = self._input(request)
        source, added = self._add(services.qa_create, **data)
        if not added:
            return Response(QaSourceSerializer(source).data, status=status.HTTP_200_OK)
        self.audit("knowledge.created", target=source, changes={"kind": source.kind})
        return Response(QaSourceSerializer(source).data, status=status.HTTP_201_CREATED)


class QaSourceDetailApi(_SourceDetailApi):
    kind = KnowledgeSource.Kind.QA
    serializer_class = QaSourceSerializer

    @extend_schema(operation_id="knowledge_qa_retrieve")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(operation_id="knowledge_qa_destroy", responses={200: None})
    def delete(self, request, *args, **kwargs):
        return super().delete(request, *args, **kwargs)


# --- search ------------------------------------------------------------------------------
class KnowledgeSearchApi(OrganizationAPIView):
    serializer_class = PassageSerializer

    @extend_schema(
        operation_id="knowledge_search",
        parameters=[SearchQuerySerializer],
        responses=PassageSerializer(many=True),
        description="What the assistant would retrieve for `q` (hybrid BM25 + semantic by default).",
    )
    def get(self, request, *args, **kwargs):
        query = SearchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        assistant = _assistant(organization=self.organization, assistant_id=data.get("assistant_id"))
        passages = retrieval.chunk_search(
            organization=self.organization,
            assistant=assistant,
            query=data["q"],
            k=data["k"],
            mode=data["mode"],
        )
        return Response(PassageSerializer(passages, many=True).data)


# --- settings ----------------------------------------------------------------------------
class KnowledgeSettingsApi(OrganizationAPIView):
    """`GET /api/v1/knowledge/settings`, `PATCH` `{"knowledge_embedder": "default" | "multilingual"}`:
    the embedder the organization's knowledge is searched with (Settings › Knowledge in the
    dashboard). Changing it needs an API key made by an owner or admin."""

    serializer_class = KnowledgeSettingsSerializer

    def _data(self) -> dict:
        from knowledge.embeddings import embedder_get

        progress = services.embedder_switch_progress(organization=self.organization)
        return {
            "knowledge_embedder": progress["current"],
            "knowledge_embedder_next": progress["next"],
            "embedding_model": embedder_get(organization=self.organization).name,
            "chunks": progress["total"],
            "chunks_ready": progress["done"],
        }

    @extend_schema(operation_id="knowledge_settings_get", responses=KnowledgeSettingsSerializer)
    def get(self, request):
        return Response(self._data())

    @extend_schema(
        operation_id="knowledge_settings_update",
        request=KnowledgeSettingsSerializer,
        responses=KnowledgeSettingsSerializer,
    )
    def patch(self, request):
        api_key = getattr(self.credential, "api_key", None)
        if api_key is None or not api_key_may_administer(api_key=api_key):
            raise exceptions.PermissionDenied(
                "Only an API key made by an owner or admin may change the knowledge settings."
            )
        serializer = KnowledgeSettingsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        choice = serializer.validated_data["knowledge_embedder"]
        before = self.organization.knowledge_embedder_next or self.organization.knowledge_embedder
        outcome = services.embedder_switch_start(organization=self.organization, choice=choice)
        if outcome != "unchanged":
            self.audit(
                "knowledge.embedder_changed",
                target=self.organization,
                changes={"knowledge_embedder": [before, choice], "outcome": outcome},
            )
        return Response(self._data())
