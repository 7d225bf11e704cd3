from rest_framework import serializers

from assistants.models import Assistant, UserContext
from assistants.validators import model_validate


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
        return model_validate(value, error_class=serializers.ValidationError)


class UserContextSerializer(serializers.ModelSerializer):
    user_reference = serializers.CharField(max_length=255)
    traits = serializers.JSONField(required=False)

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
