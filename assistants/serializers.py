from rest_framework import serializers

from assistants.models import Action, Assistant, UserContext
from assistants.validators import model_validate
from core.api.fields import JSONField, JSONObjectField


class AssistantSerializer(serializers.ModelSerializer):
    name = serializers.CharField(max_length=200)
    default_tasks = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=50
    )
    temperature = serializers.FloatField(required=False, min_value=0.0, max_value=2.0)
    language = serializers.CharField(max_length=20, required=False, allow_blank=True)
    handoff_after_unanswered = serializers.IntegerField(required=False, min_value=0, max_value=20)

    class Meta:
        model = Assistant
        fields = [
            "id",
            "name",
            "description",
            "tone",
            "language",
            "default_tasks",
            "is_active",
            "instructions",
            "model",
            "temperature",
            "handoff_after_unanswered",
            "handoff_on_thumbs_down",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_model(self, value: str) -> str:
        return model_validate(
            value, organization=self.context.get("organization"), error_class=serializers.ValidationError
        )


class UserContextSerializer(serializers.ModelSerializer):
    user_reference = serializers.CharField(max_length=255)
    traits = JSONObjectField(required=False)

    class Meta:
        model = UserContext
        fields = ["id", "user_reference", "traits", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_traits(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("traits must be a JSON object.")
        if len(str(value)) > 20000:
            raise serializers.ValidationError("traits is too large (20,000 characters at most).")
        return value


class ActionSerializer(serializers.ModelSerializer):
    """An assistant action. `headers` is write-only: responses list `header_names` only.

    On PATCH, `headers` changes the headers it names (a value sets, null removes); on
    POST and PUT it is the whole set.
    """

    assistant_id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(max_length=64)
    description = serializers.CharField(max_length=1000)
    method = serializers.CharField(max_length=10, required=False, default="GET")
    url_template = serializers.CharField(max_length=2000)
    parameters = JSONField(required=False)
    headers = serializers.DictField(
        child=serializers.CharField(
            allow_null=True, allow_blank=True, max_length=4096, trim_whitespace=False
        ),
        required=False,
        write_only=True,
        allow_empty=True,
    )
    header_names = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Action
        fields = [
            "id",
            "assistant_id",
            "name",
            "description",
            "method",
            "url_template",
            "parameters",
            "headers",
            "header_names",
            "requires_verified_visitor",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "assistant_id", "header_names", "created_at", "updated_at"]

    def validate_method(self, value: str) -> str:
        value = (value or "").strip().upper()
        if value not in Action.Method.values:
            raise serializers.ValidationError(f"Choose one of {', '.join(Action.Method.values)}.")
        return value


class ActionImportSerializer(serializers.Serializer):
    """An OpenAPI 3 document or operation to turn into a prefilled (unsaved) action."""

    document = JSONField(help_text="an OpenAPI 3 document, or one operation object")
    path = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    method = serializers.CharField(required=False, allow_blank=True, max_length=10)
    base_url = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ActionImportResultSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    method = serializers.CharField()
    url_template = serializers.CharField()
    parameters = JSONField()
