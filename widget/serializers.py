from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.fields import JSONField
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
        help_text="The visitor's latest widget token (may be expired, for less than a week), to keep "
        "an anonymous visitor's identity: only a token of the same client id, widget and origin, and "
        "each token once. Otherwise the visitor is new.",
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


# --- the widget chat API (`/api/widget/*`, see widget.chat_api) ---------------------------


# The widget chat API's optional fields also take an explicit `null` (JavaScript callers write
# `sessionId: id ?? null`), which means the same as leaving the field out.
@extend_schema_field(
    {"type": "object", "properties": {"title": {"type": "string"}, "content": {"type": "string"}}}
)
class WidgetChatPolicyField(serializers.DictField):
    """One of seed 000's `policies`: `{"title", "content"}` (strings, checked below)."""


@extend_schema_field({"type": "string", "nullable": True})
class WidgetChatScrapedDataField(JSONField):
    """Seed 000's `scrapedData`: text from the customer's site (any other JSON is read as text)."""


class WidgetChatContextRulesSerializer(serializers.Serializer):
    companyName = serializers.CharField(max_length=200, required=False, allow_blank=True, allow_null=True)  # noqa: N815
    companyDescription = serializers.CharField(  # noqa: N815
        max_length=2000, required=False, allow_blank=True, allow_null=True
    )
    policies = serializers.ListField(
        child=WidgetChatPolicyField(), required=False, max_length=50, allow_null=True
    )
    tone = serializers.CharField(max_length=50, required=False, allow_blank=True, allow_null=True)

    def validate_policies(self, value):
        for policy in value or []:
            for key in ("title", "content"):
                if key in policy and not isinstance(policy[key], str):
                    raise serializers.ValidationError(f"Each policy's {key} must be a string.")
        return value


class WidgetChatContextSerializer(serializers.Serializer):
    rules = WidgetChatContextRulesSerializer(required=False, allow_null=True)
    scrapedData = WidgetChatScrapedDataField(required=False, allow_null=True)  # noqa: N815


class WidgetChatRequestSerializer(serializers.Serializer):
    """`POST /api/widget/chat`'s body. Unknown fields (model, api_base, api_key…) are ignored, never forwarded."""

    message = serializers.CharField(trim_whitespace=True)
    widgetId = serializers.CharField(max_length=100)  # noqa: N815
    sessionId = serializers.CharField(max_length=255, required=False, allow_blank=True, allow_null=True)  # noqa: N815
    context = WidgetChatContextSerializer(required=False, allow_null=True)

    def validate_message(self, value: str) -> str:
        limit = settings.CHAT_MAX_MESSAGE_CHARS
        if len(value) > limit:
            raise serializers.ValidationError(f"Ensure this field has no more than {limit} characters.")
        return value


class WidgetChatResponseSerializer(serializers.Serializer):
    """Documents seed 000's answer (widget.chat_api builds it): `resp_<epoch ms>`, the reply,
    and when it was written (`2023-03-29T14:30:00.000Z`)."""

    id = serializers.RegexField(r"^resp_[0-9]+$")
    message = serializers.CharField()
    timestamp = serializers.DateTimeField()


class WidgetChatConfigSerializer(serializers.Serializer):
    """`GET /api/widget/config`: a widget's public configuration, camelCase like the rest of the
    widget chat API."""

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
    humanHandoff = serializers.ChoiceField(  # noqa: N815
        choices=["after_answer", "always", "off"],
        help_text='when the "Talk to a person" control shows: once the assistant has answered, always, never',
    )
    isActive = serializers.BooleanField()  # noqa: N815


class WidgetChatScrapeRequestSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2048)
    widgetId = serializers.CharField(required=False, allow_null=True, max_length=64)  # noqa: N815


class WidgetChatScrapeResponseSerializer(serializers.Serializer):
    url = serializers.CharField()
    title = serializers.CharField()
    content = serializers.CharField()
    scrapedAt = serializers.DateTimeField()  # noqa: N815
