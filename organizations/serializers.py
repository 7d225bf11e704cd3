from rest_framework import serializers

from organizations import selectors
from organizations.models import ApiKey, AuditEvent, Organization


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "rate_limit_per_hour", "created_at"]
        read_only_fields = fields


class ApiKeySerializer(serializers.ModelSerializer):
    secret_prefix = serializers.CharField(source="masked_secret", read_only=True)
    created_by = serializers.SerializerMethodField(
        help_text="The email of the person who made the key (kept if their account is deleted); "
        "null for a key made by an operator command."
    )
    created_by_is_member = serializers.SerializerMethodField(
        help_text="Whether that person still belongs to the organization (null without one). "
        "A key whose maker left keeps working only if an admin kept it when they left."
    )

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "client_id",
            "secret_prefix",
            "created_at",
            "last_used_at",
            "revoked_at",
            "is_active",
            "created_by",
            "created_by_is_member",
        ]
        read_only_fields = fields

    def get_created_by(self, api_key) -> str | None:
        if api_key.created_by_id:
            return api_key.created_by.email
        return api_key.created_by_email or None  # their account may be gone; the name stays

    def get_created_by_is_member(self, api_key) -> bool | None:
        if api_key.created_by_id is None:
            return False if api_key.created_by_email else None
        annotated = getattr(api_key, "creator_is_member", None)
        if annotated is not None:
            return annotated
        return selectors.api_key_creator_is_member(api_key=api_key)


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "action",
            "actor",
            "actor_type",
            "ip",
            "user_agent",
            "target_type",
            "target_id",
            "changes",
            "created_at",
        ]
        read_only_fields = fields
