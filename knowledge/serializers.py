from __future__ import annotations

from rest_framework import serializers

from knowledge.models import KnowledgeSource


class SourceBaseSerializer(serializers.ModelSerializer):
    type = serializers.CharField(source="kind", read_only=True)
    assistant_id = serializers.UUIDField(read_only=True, allow_null=True)
    error = serializers.CharField(source="display_error", read_only=True)

    class Meta:
        model = KnowledgeSource
        fields = [
            "id",
            "type",
            "title",
            "status",
            "error",
            "chunk_count",
            "assistant_id",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class FileSourceSerializer(SourceBaseSerializer):
    class Meta(SourceBaseSerializer.Meta):
        fields = [
            *SourceBaseSerializer.Meta.fields,
            "file_name",
            "file_type",
            "file_size",
            "page_count",
            "ready_at",
        ]
        read_only_fields = fields


class UrlSourceSerializer(SourceBaseSerializer):
    page_count = serializers.IntegerField(source="document_count", read_only=True)

    class Meta(SourceBaseSerializer.Meta):
        fields = [
            *SourceBaseSerializer.Meta.fields,
            "url",
            "canonical_url",
            "crawl",
            "max_pages",
            "page_count",
            "sync_interval_hours",
            "last_synced_at",
            "ready_at",
        ]
        read_only_fields = fields


class QaSourceSerializer(SourceBaseSerializer):
    source = serializers.CharField(source="origin", read_only=True)
    tags = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta(SourceBaseSerializer.Meta):
        fields = [*SourceBaseSerializer.Meta.fields, "question", "answer", "tags", "source"]
        read_only_fields = fields


class FileSourceCreateSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)
    title = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    file_type = serializers.CharField(required=False, allow_blank=True, max_length=120, default="")
    assistant_id = serializers.UUIDField(required=False, allow_null=True, default=None)


class UrlSourceCreateSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000, trim_whitespace=False)
    title = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    crawl = serializers.BooleanField(required=False, default=False)
    max_pages = serializers.IntegerField(required=False, min_value=1, default=1)
    sync_interval_hours = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=8760
    )
    assistant_id = serializers.UUIDField(required=False, allow_null=True, default=None)


class QaSourceCreateSerializer(serializers.Serializer):
    question = serializers.CharField(max_length=2000)
    answer = serializers.CharField(max_length=20000)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list, max_length=20
    )
    source = serializers.CharField(required=False, allow_blank=True, max_length=100, default="manual")
    assistant_id = serializers.UUIDField(required=False, allow_null=True, default=None)


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(max_length=2000)
    k = serializers.IntegerField(required=False, min_value=1, max_value=50, default=5)
    mode = serializers.ChoiceField(choices=["hybrid", "lexical", "vector"], required=False, default="hybrid")
    assistant_id = serializers.UUIDField(required=False, allow_null=True, default=None)


class PassageSerializer(serializers.Serializer):
    source_id = serializers.UUIDField()
    chunk_id = serializers.UUIDField()
    type = serializers.CharField(source="source_type")
    title = serializers.CharField()
    url = serializers.CharField()
    file = serializers.CharField(source="file_name")
    page = serializers.IntegerField(allow_null=True)
    snippet = serializers.CharField()
    content = serializers.CharField()
    score = serializers.FloatField()


class KnowledgeSettingsSerializer(serializers.Serializer):
    """`/api/v1/knowledge/settings`: what the organization's knowledge is searched with."""

    knowledge_embedder = serializers.ChoiceField(
        choices=["default", "multilingual"],
        help_text="default: the server's embedder (English); multilingual: one vector space for "
        "~100 languages. A change re-embeds the knowledge in the background; search keeps the "
        "current embedder until it is done.",
    )
    knowledge_embedder_next = serializers.CharField(
        read_only=True, help_text='The embedder a running switch moves to ("" when none runs).'
    )
    embedding_model = serializers.CharField(read_only=True, help_text="The model of the current embedder.")
    chunks = serializers.IntegerField(read_only=True, help_text="Passages in the knowledge base.")
    chunks_ready = serializers.IntegerField(
        read_only=True, help_text="Passages already embedded with the embedder a running switch moves to."
    )
