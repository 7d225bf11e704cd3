from django.db import models

from core.tenancy import TenantModel


class Widget(TenantModel):
    """One embeddable chat widget: its assistant, its look and where it may be embedded."""

    class Position(models.TextChoices):
        BOTTOM_RIGHT = "bottom-right", "Bottom right"
        BOTTOM_LEFT = "bottom-left", "Bottom left"

    assistant = models.ForeignKey("assistants.Assistant", on_delete=models.CASCADE, related_name="widgets")
    title = models.CharField(max_length=100, default="Support")
    greeting = models.CharField(max_length=500, default="Hi! How can we help you today?")
    placeholder = models.CharField(max_length=200, default="Type your question…")
    primary_color = models.CharField(max_length=7, default="#2563eb")
    position = models.CharField(max_length=20, choices=Position.choices, default=Position.BOTTOM_RIGHT)
    launcher_label = models.CharField(max_length=50, default="Chat with us")
    suggested_questions = models.JSONField(default=list, blank=True)
    allowed_domains = models.JSONField(
        default=list, blank=True, help_text="Origins allowed to embed it; empty = anywhere"
    )
    options = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    # Only visitors whose identity the organization's server proved (user_hash/user_token)
    # get a token for this widget: for widgets on signed-in pages only.
    require_verified_visitors = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title
