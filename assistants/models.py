from django.db import models

from core.tenancy import TenantModel


class Assistant(TenantModel):
    """A persona that answers from the organization's knowledge."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    tone = models.CharField(max_length=50, blank=True, default="professional")
    language = models.CharField(max_length=20, blank=True, default="en")
    default_tasks = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    instructions = models.TextField(blank=True, default="")
    model = models.CharField(
        max_length=200, blank=True, default="", help_text="litellm model; empty = LLM_MODEL"
    )
    temperature = models.FloatField(default=0.2)
    handoff_after_unanswered = models.PositiveSmallIntegerField(
        default=2, help_text="hand over to a person after this many unanswered answers in a row; 0 = never"
    )
    handoff_on_thumbs_down = models.BooleanField(
        default=False, help_text="a thumbs-down on an answer asks for a person"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class UserContext(TenantModel):
    """What a customer's backend tells us about one of its users, to personalise answers."""

    user_reference = models.CharField(max_length=255)
    traits = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user_reference"], name="unique_user_reference_per_org"
            )
        ]

    def __str__(self) -> str:
        return self.user_reference


class Action(TenantModel):
    """A call the assistant may make to the organization's own API (an LLM "tool").

    `headers` holds header names mapped to values encrypted at rest (purpose "action header");
    values are decrypted only to make the call and never leave the server.
    """

    class Method(models.TextChoices):
        GET = "GET"
        POST = "POST"
        PUT = "PUT"
        PATCH = "PATCH"
        DELETE = "DELETE"

    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="actions")
    name = models.CharField(max_length=64, help_text="identifier the model calls, e.g. order_lookup")
    description = models.TextField(help_text="what the model reads to decide when to call it")
    method = models.CharField(max_length=10, choices=Method.choices, default=Method.GET)
    url_template = models.CharField(max_length=2000)
    parameters = models.JSONField(default=dict, blank=True, help_text="JSON Schema of the arguments")
    headers = models.JSONField(default=dict, blank=True, help_text="name → encrypted value")
    requires_verified_visitor = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["assistant", "name"], name="unique_action_name_per_assistant")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def header_names(self) -> list[str]:
        return sorted(self.headers or {}, key=str.lower)


class ModelConnection(TenantModel):
    """An LLM the organization brings: provider, model, its own API key (encrypted at rest,
    never shown again) and, for self-hosted servers, a base URL. Its `name` (the litellm model
    id, e.g. "anthropic/claude-3-5-haiku-latest") is what an assistant's `model` picks."""

    label = models.CharField(max_length=100, blank=True, default="")
    provider = models.CharField(max_length=30)
    model = models.CharField(max_length=200)
    name = models.CharField(max_length=240, help_text="litellm model id: provider prefix + model")
    base_url = models.URLField(max_length=500, blank=True, default="")
    api_key_encrypted = models.TextField(blank=True, default="")
    api_key_hint = models.CharField(max_length=8, blank=True, default="", help_text="last 4 characters")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="model_connection_unique_name"),
        ]

    def __str__(self) -> str:
        return self.label or self.name
