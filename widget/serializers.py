from rest_framework import serializers

from widget.models import Widget


class WidgetSerializer(serializers.ModelSerializer):
    assistant_id = serializers.UUIDField(read_only=True)
    embed_snippet = serializers.SerializerMethodField()

    class Meta:
        model = Widget
        fields = [
            "id",
            "assistant_id",
            "title",
            "greeting",
            "placeholder",
            "primary_color",
            "position",
            "launcher_label",
            "suggested_questions",
            "allowed_domains",
            "options",
            "is_active",
            "require_verified_visitors",
            "embed_snippet",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_embed_snippet(self, widget) -> str | None:
        return self.context.get("snippets", {}).get(widget.pk)


class WidgetWriteSerializer(serializers.Serializer):
    """Shapes only; the rules (colours, origins, the assistant's tenant) live in services."""

    assistant_id = serializers.UUIDField(required=False)
    title = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    greeting = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    placeholder = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    primary_color = serializers.CharField(required=False)
    position = serializers.ChoiceField(choices=Widget.Position.choices, required=False)
    launcher_label = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    suggested_questions = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False)
    allowed_domains = serializers.ListField(child=serializers.CharField(), required=False)
    options = serializers.DictField(required=False)
    is_active = serializers.BooleanField(required=False)
    require_verified_visitors = serializers.BooleanField(required=False)

    def validate(self, attrs):
        unknown = set(self.initial_data) - set(self.fields) if isinstance(self.initial_data, dict) else set()
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
        return attrs


class WidgetPublicConfigSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    assistant_id = serializers.UUIDField()
    title = serializers.CharField()
    greeting = serializers.CharField()
    placeholder = serializers.CharField()
    primary_color = serializers.CharField()
    position = serializers.CharField()
    launcher_label = serializers.CharField()
    suggested_questions = serializers.ListField(child=serializers.CharField())
    instance = serializers.CharField()
    show_sources = serializers.BooleanField()
    collect_feedback = serializers.BooleanField()
    auto_open = serializers.BooleanField()
    human_handoff = serializers.ChoiceField(
        choices=["after_answer", "always", "off"],
        help_text='when the "Talk to a person" control shows: once the assistant has answered, always, never',
    )
    is_active = serializers.BooleanField()
    team_available = serializers.BooleanField(
        help_text="is the team at work now (the organization's business hours)"
    )
    team_back_at = serializers.DateTimeField(
        allow_null=True, help_text="when the team is away: its next opening, else null"
    )


class WidgetTokenRequestSerializer(serializers.Serializer):
    client_id = serializers.CharField(max_length=100)
    config_id = serializers.CharField(required=False, allow_null=True, max_length=64)
    visitor_token = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=4096,
        help_text="The visitor's previous widget token (may be expired), to keep their identity.",
    )
    user_id = serializers.CharField(
        required=False, max_length=255, trim_whitespace=False, help_text="Your user's id (verified visitors)."
    )
    user_hash = serializers.CharField(
        required=False,
        max_length=128,
        trim_whitespace=False,
        help_text="Lower-case hex HMAC-SHA256 of user_id under the organization's identity secret.",
    )
    user_token = serializers.CharField(
        required=False,
        max_length=8192,
        trim_whitespace=False,
        help_text="An HS256 JWT signed with the identity secret: sub, optional email, name, traits; exp ≤ 24 h.",
    )


class WidgetTokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_in = serializers.IntegerField()
    token_type = serializers.CharField()


class SeedWidgetConfigSerializer(serializers.Serializer):
    """Seed 000's `GET /api/widget/config` (camelCase like the rest of that API)."""

    widgetId = serializers.UUIDField()  # noqa: N815
    assistantId = serializers.UUIDField()  # noqa: N815
    title = serializers.CharField()
    greeting = serializers.CharField()
    placeholder = serializers.CharField()
    primaryColor = serializers.CharField()  # noqa: N815
    position = serializers.CharField()
    launcherLabel = serializers.CharField()  # noqa: N815
    suggestedQuestions = serializers.ListField(child=serializers.CharField())  # noqa: N815
    instance = serializers.CharField()
    showSources = serializers.BooleanField()  # noqa: N815
    collectFeedback = serializers.BooleanField()  # noqa: N815
    autoOpen = serializers.BooleanField()  # noqa: N815
    isActive = serializers.BooleanField()  # noqa: N815


class SeedScrapeRequestSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2048)
    widgetId = serializers.CharField(required=False, allow_null=True, max_length=64)  # noqa: N815


class SeedScrapeResponseSerializer(serializers.Serializer):
    url = serializers.CharField()
    title = serializers.CharField()
    content = serializers.CharField()
    scrapedAt = serializers.CharField()  # noqa: N815
