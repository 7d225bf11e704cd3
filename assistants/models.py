from django.db import models

from supportai.tenancy import TenantModel


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
