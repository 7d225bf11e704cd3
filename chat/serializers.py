import functools

from django.conf import settings
from rest_framework import serializers

from chat.models import Conversation, Message
from core.api.fields import JSONField, JSONObjectField, SourcesField, ToolCallsField


class MessageSerializer(serializers.ModelSerializer):
    """What a posted message returns (`data`), and each item of a transcript."""

    conversation_id = serializers.UUIDField(read_only=True)
    in_reply_to = serializers.UUIDField(source="in_reply_to_id", read_only=True, allow_null=True)
    feedback = serializers.SerializerMethodField()
    sources = SourcesField(read_only=True)
    tool_calls = ToolCallsField(
        read_only=True,
        help_text="The assistant actions called for this answer (API keys only: a widget "
        "visitor's token reads messages without this field).",
    )
    metadata = JSONObjectField(read_only=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "conversation_id",
            "role",
            "content",
            "sources",
            "tool_calls",
            "created_at",
            "in_reply_to",
            "status",
            "answered",
            "metadata",
            "feedback",
        ]
        read_only_fields = fields
        sometimes_absent = ("tool_calls",)  # not in the OpenAPI `required` list (core.api.schema)

    def get_feedback(self, message: Message) -> str | None:
        return {1: "up", -1: "down"}.get(message.feedback)


class VisitorMessageSerializer(MessageSerializer):
    """A message as a widget visitor's token reads it (the sessions API, its answer stream and
    live events): without `tool_calls`, which actions the assistant called and with what
    arguments (internal data of the organization's systems may be in them) are the operator's
    detail. API keys and the dashboard see them."""

    class Meta(MessageSerializer.Meta):
        fields = [name for name in MessageSerializer.Meta.fields if name != "tool_calls"]
        read_only_fields = fields


def message_serializer_for(credential) -> type[MessageSerializer]:
    """The message shape a credential reads: a widget token's (a visitor's) or an API key's."""
    return VisitorMessageSerializer if credential.is_widget else MessageSerializer


@functools.cache
def _message_representer(serializer_class: type[MessageSerializer]) -> MessageSerializer:
    serializer = serializer_class()
    serializer.fields  # noqa: B018 (built and bound once, here)
    return serializer


def message_data(message: Message, serializer_class: type[MessageSerializer] = MessageSerializer) -> dict:
    """`serializer_class(message).data`, from one serializer per class: a ModelSerializer builds
    its twelve fields from the model on every instance, which was more Python than a chat
    turn's whole representation. Safe to share: these fields read the message and nothing else
    (no context, no state kept between calls)."""
    return _message_representer(serializer_class).to_representation(message)


class MessageCreateSerializer(serializers.Serializer):
    content = serializers.CharField(trim_whitespace=True)
    metadata = JSONObjectField(required=False, default=dict)

    def validate_content(self, value: str) -> str:
        limit = settings.CHAT_MAX_MESSAGE_CHARS
        if len(value) > limit:
            raise serializers.ValidationError(f"Ensure this field has no more than {limit} characters.")
        return value

    def validate_metadata(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("metadata must be a JSON object.")
        if len(str(value)) > 10000:
            raise serializers.ValidationError("metadata is too large.")
        return value


class HandoffRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)
    # Checked by the service (header-injection characters, syntax): one rule for every path.
    email = serializers.CharField(max_length=254, required=False, allow_blank=True, trim_whitespace=False)


class OperatorReplySerializer(serializers.Serializer):
    content = serializers.CharField(max_length=4000, help_text="the reply the visitor reads")


class CsatCreateSerializer(serializers.Serializer):
    score = JSONField(help_text="a whole number from 1 to 5")
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class CsatSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    conversation_id = serializers.UUIDField(read_only=True)
    resolution = serializers.IntegerField(read_only=True)
    score = serializers.IntegerField(read_only=True)
    comment = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class FeedbackSerializer(serializers.Serializer):
    rating = serializers.ChoiceField(choices=["up", "down", "none"])


def _metadata(value):
    if not isinstance(value, dict):
        raise serializers.ValidationError("metadata must be a JSON object.")
    if len(str(value)) > 10000:
        raise serializers.ValidationError("metadata is too large.")
    return value


class SessionCreateSerializer(serializers.Serializer):
    assistant_id = serializers.UUIDField(required=False)
    visitor_id = serializers.CharField(max_length=255, required=False, allow_blank=True)
    locale = serializers.CharField(max_length=20, required=False, allow_blank=True)
    metadata = JSONObjectField(required=False, default=dict, validators=[_metadata])


# The follow-up address a visitor left when asking for a person, or "" (documented as a
# plain string: an email format would not admit the empty value).
_HANDOFF_EMAIL = {"read_only": True, "help_text": "The visitor's follow-up email address, or empty."}
# What brought a person in, or "" while nobody was asked for (the empty value is documented).
_HANDOFF_TRIGGER = {"choices": Conversation.HandoffTrigger.choices, "allow_blank": True, "read_only": True}


class SessionSerializer(serializers.ModelSerializer):
    assistant_id = serializers.UUIDField(read_only=True)
    status = serializers.CharField(source="handoff_status", read_only=True)
    handoff_email = serializers.CharField(**_HANDOFF_EMAIL)
    handoff_trigger = serializers.ChoiceField(**_HANDOFF_TRIGGER)
    metadata = JSONObjectField(read_only=True)

    class Meta:
        model = Conversation
        fields = [
            "id",
            "assistant_id",
            "visitor_id",
            "customer_id",
            "visitor_verified",
            "locale",
            "metadata",
            "status",
            "handoff_status",
            "handoff_trigger",
            "handoff_reason",
            "handoff_requested_at",
            "handoff_email",
            "resolved_at",
            "created_at",
            "updated_at",
            "last_message_at",
        ]
        read_only_fields = fields


class ConversationCreateSerializer(serializers.Serializer):
    assistant_id = serializers.UUIDField()
    customer_id = serializers.CharField(max_length=255, required=False, allow_blank=True)
    user_context_id = serializers.CharField(max_length=255, required=False, allow_blank=True, allow_null=True)
    title = serializers.CharField(max_length=255, required=False, allow_blank=True)
    locale = serializers.CharField(max_length=20, required=False, allow_blank=True)
    metadata = JSONObjectField(required=False, default=dict, validators=[_metadata])


class ConversationSerializer(serializers.ModelSerializer):
    assistant_id = serializers.UUIDField(read_only=True)
    user_context_id = serializers.UUIDField(read_only=True, allow_null=True)
    status = serializers.CharField(source="handoff_status", read_only=True)
    handoff_email = serializers.CharField(**_HANDOFF_EMAIL)
    handoff_trigger = serializers.ChoiceField(**_HANDOFF_TRIGGER)
    metadata = JSONObjectField(read_only=True)

    class Meta:
        model = Conversation
        fields = [
            "id",
            "assistant_id",
            "customer_id",
            "user_context_id",
            "title",
            "locale",
            "metadata",
            "status",
            "handoff_status",
            "handoff_trigger",
            "handoff_reason",
            "handoff_requested_at",
            "handoff_email",
            "resolved_at",
            "created_at",
            "updated_at",
            "last_message_at",
        ]
        read_only_fields = fields
