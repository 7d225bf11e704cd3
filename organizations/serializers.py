from rest_framework import serializers

from organizations.models import ApiKey, AuditEvent, Organization


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "rate_limit_per_hour", "created_at"]
        read_only_fields = fields


class ApiKeySerializer(serializers.ModelSerializer):
    secret_prefix = serializers.CharField(source="masked_secret", read_only=True)

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
        ]
        read_only_fields = fields


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
