import json

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import F, Q
from django.utils.crypto import salted_hmac

from chat.search import message_document
from core.tenancy import TenantModel


class Conversation(TenantModel):
    """One thread between a visitor or customer and an assistant.

    A *session* (`kind="session"`, `/api/v1/sessions/`) is an anonymous visitor's thread; a
    *conversation* (`/api/v1/conversations/`) belongs to a known customer and may carry a
    user context whose traits personalise the answers. Both behave the same way otherwise.

    "Session" means three things in this code base, so it is always qualified:
    - a chat session: this model with `kind="session"` (`Conversation.Kind.SESSION`);
    - the widget chat API's `sessionId`: the caller's own name for a thread, stored as
      `external_session_id` (one thread per widget and id);
    - the dashboard's login session (`request.session`, Django's): where the current
      organization and an operator's playground thread are remembered.
    """

    class Kind(models.TextChoices):
        SESSION = "session", "Session"
        CONVERSATION = "conversation", "Conversation"

    class HandoffStatus(models.TextChoices):
        BOT = "bot", "Bot answering"
        WAITING = "waiting", "Waiting for a person"
        HUMAN = "human", "Taken over by an operator"
        RESOLVED = "resolved", "Resolved"

    class HandoffTrigger(models.TextChoices):
        ASKED = "asked", "Visitor asked for a person"
        UNANSWERED = "unanswered", "Unanswered questions in a row"
        THUMBS_DOWN = "thumbs_down", "Thumbs-down on an answer"
        REOPENED = "reopened", "Visitor wrote after resolution"
        # `POST …/handoff` with an API key: the organization's own backend, not the visitor.
        BACKEND = "backend", "Handed over by your system"

    assistant = models.ForeignKey(
        "assistants.Assistant", on_delete=models.CASCADE, related_name="conversations"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.SESSION)
    visitor_id = models.CharField(max_length=255, blank=True, default="")
    customer_id = models.CharField(max_length=255, blank=True, default="")
    # The visitor's identity was proven by the organization's server (user_hash/user_token):
    # customer_id and user_context are then theirs, and operators see a "verified" badge.
    visitor_verified = models.BooleanField(default=False)
    user_context = models.ForeignKey(
        "assistants.UserContext",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
    )
    title = models.CharField(max_length=255, blank=True, default="")
    locale = models.CharField(max_length=20, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    external_session_id = models.CharField(
        max_length=255, blank=True, default="", help_text="seed 000's sessionId"
    )
    widget = models.ForeignKey(
        "widget.Widget", on_delete=models.SET_NULL, null=True, blank=True, related_name="conversations"
    )
    handoff_status = models.CharField(max_length=20, choices=HandoffStatus.choices, default=HandoffStatus.BOT)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    handoff_trigger = models.CharField(max_length=20, choices=HandoffTrigger.choices, blank=True, default="")
    handoff_reason = models.CharField(
        max_length=500, blank=True, default="", help_text="what the visitor or API caller said, if anything"
    )
    handoff_requested_at = models.DateTimeField(null=True, blank=True)
    handoff_email = models.EmailField(
        max_length=254, blank=True, default="", help_text="where an offline visitor wants the reply"
    )
    handoff_notified_at = models.DateTimeField(
        null=True, blank=True, help_text="when the team was emailed about the latest handoff"
    )
    visitor_seen_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="the visitor's widget last read or wrote here (at most once a minute)",
    )
    first_human_reply_at = models.DateTimeField(
        null=True, blank=True, help_text="the first operator reply after the latest handoff request"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolution_count = models.PositiveIntegerField(
        default=0, help_text="how often it was resolved: a CSAT rating belongs to one resolution"
    )
    last_message_at = models.DateTimeField(null=True, blank=True)
    # The `seq` of its newest message: bumped under this row's lock by the statement that
    # stores a message (`chat.services.conversations.message_store`).
    message_seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "widget", "external_session_id"],
                condition=~Q(external_session_id=""),
                name="unique_external_session_per_widget",
            )
        ]
        indexes = [
            models.Index(fields=["organization", "kind", "-created_at"], name="chat_conv_org_kind_created"),
            models.Index(fields=["organization", "customer_id"], name="chat_conv_org_customer"),
            # The inbox's orderings (`chat.selectors.INBOX_ORDER`, `WAITING_ORDER`) column for
            # column, so its first page reads a page of index entries, not every conversation:
            # all of them (the dashboard), one kind (the API's lists), the waiting queue.
            models.Index(
                F("organization"),
                F("last_message_at").desc(nulls_last=True),
                F("created_at").desc(),
                F("id").desc(),
                name="chat_conv_org_activity",
            ),
            models.Index(
                F("organization"),
                F("kind"),
                F("last_message_at").desc(nulls_last=True),
                F("created_at").desc(),
                F("id").desc(),
                name="chat_conv_org_kind_activity",
            ),
            models.Index(
                fields=["organization", "handoff_requested_at", "created_at", "id"],
                condition=Q(handoff_status="waiting"),
                name="chat_conv_org_waiting_queue",
            ),
        ]

    def __str__(self) -> str:
        return self.title or f"{self.kind} {self.pk}"

    @property
    def is_taken_over(self) -> bool:
        return self.handoff_status == self.HandoffStatus.HUMAN

    @property
    def bot_is_silent(self) -> bool:
        """Waiting for a person or with one: the assistant does not answer."""
        return self.handoff_status in (self.HandoffStatus.WAITING, self.HandoffStatus.HUMAN)

    @property
    def verified_email(self) -> str:
        """The address of a visitor whose identity the organization's server proved (the
        `email` of their identity token, kept in the linked customer context's traits), or "".
        Never a claim of an unverified visitor: only a verified session's context is theirs."""
        if not self.visitor_verified or self.user_context_id is None:
            return ""
        traits = self.user_context.traits
        email = traits.get("email") if isinstance(traits, dict) else None
        if not isinstance(email, str) or len(email) > 254 or any(char in email for char in "\r\n\0"):
            return ""
        try:
            validate_email(email.strip())
        except ValidationError:
            return ""
        return email.strip()

    @property
    def reply_email(self) -> str:
        """Where an operator's reply goes when the visitor has left: the address they gave,
        else their verified one."""
        return self.handoff_email or self.verified_email


class Message(TenantModel):
    """One turn: the user's question, the assistant's answer, or an operator's reply."""

    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"
        OPERATOR = "operator", "Operator"

    class Status(models.TextChoices):
        COMPLETE = "complete", "Complete"
        FAILED = "failed", "Failed"
        TRUNCATED = "truncated", "Truncated"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=20, choices=Role.choices)
    content = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    sources = models.JSONField(default=list, blank=True)
    # Assistant actions called for this answer: [{name, arguments, status, duration_ms, error}].
    tool_calls = models.JSONField(default=list, blank=True)
    # A question's: the rounds of action calls its turn has run so far, with their results
    # (`chat.actions`), so a retry of the turn never runs an action twice. Internal (never
    # serialized); emptied when the answer is stored.
    tool_rounds = models.JSONField(default=list, blank=True)
    in_reply_to = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replies"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.COMPLETE)
    answered = models.BooleanField(default=False, help_text="grounded in knowledge (assistant messages)")
    feedback = models.SmallIntegerField(null=True, blank=True, help_text="-1, 0 or 1")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    model = models.CharField(max_length=200, blank=True, default="")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    # Its position in the conversation, in commit order: 1, 2, 3… assigned by the statement
    # that stores it while it holds the conversation's row lock until commit, so a message
    # with a higher `seq` was never visible before one with a lower one. `created_at` is the
    # writer's clock, read before the lock (two writers can commit in the other order): the
    # transcript and every "newer than" cursor (`?after=`, the live stream's Last-Event-ID)
    # use `seq`.
    seq = models.BigIntegerField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="chat_msg_conv_seq"),
            models.UniqueConstraint(
                fields=["conversation", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="unique_idempotency_key_per_conversation",
            ),
            models.CheckConstraint(
                condition=Q(feedback__isnull=True) | Q(feedback__in=[-1, 0, 1]), name="message_feedback_range"
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="chat_msg_conv_created"),
            models.Index(fields=["organization", "role", "-created_at"], name="chat_msg_org_role_created"),
            # The inbox's Unanswered and Feedback filters (`chat.selectors.conversation_list`):
            # their EXISTS reads only the flagged answers, not every message of the organization.
            models.Index(
                fields=["organization", "conversation"],
                condition=Q(role="assistant", answered=False, status="complete"),
                name="chat_msg_org_unanswered",
            ),
            models.Index(
                fields=["organization", "conversation", "feedback"],
                condition=Q(feedback__isnull=False),
                name="chat_msg_org_feedback",
            ),
            # The inbox's search of message text: its words (`chat.search`).
            GinIndex(message_document(), name="chat_msg_search"),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"

    @property
    def tool_calls_shown(self) -> list[dict]:
        """`tool_calls` for the dashboard: each call with its arguments as compact JSON."""
        shown = []
        for call in self.tool_calls or []:
            if isinstance(call, dict):
                arguments = json.dumps(call.get("arguments"), ensure_ascii=False, separators=(", ", ": "))
                shown.append({**call, "arguments_json": arguments})
        return shown


class CsatRating(TenantModel):
    """A visitor's 1-5 rating of one resolution of a conversation (at most one each)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="csat_ratings")
    resolution = models.PositiveIntegerField(help_text="the conversation's resolution_count when rated")
    score = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True, default="")
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "resolution"], name="one_csat_per_resolution"),
            models.CheckConstraint(condition=Q(score__gte=1) & Q(score__lte=5), name="csat_score_range"),
        ]
        indexes = [models.Index(fields=["organization", "-created_at"], name="chat_csat_org_created")]

    def __str__(self) -> str:
        return f"{self.score}/5"


class ConversationNote(TenantModel):
    """An operator's private note on a conversation. A table of its own, not a message, so
    that no visitor-facing read (transcripts, live events, the widget chat API's reply) can ever
    include one."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    body = models.TextField()

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.body[:40]


class SavedReply(TenantModel):
    """A canned answer the team inserts with `/shortcut`; `{{visitor.<trait>}}` placeholders
    are filled from the conversation's context traits."""

    title = models.CharField(max_length=100)
    shortcut = models.SlugField(max_length=40)
    body = models.TextField()

    class Meta:
        ordering = ["shortcut"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "shortcut"], name="unique_saved_reply_shortcut")
        ]

    def __str__(self) -> str:
        return f"/{self.shortcut}"


class ErasedVisitor(TenantModel):
    """A visitor or customer whose data a privacy erase deleted, remembered only as a keyed
    hash, so that credentials issued to them before the erase stop at once: a widget token
    (claim `vis`, or `uid` for a verified customer) with `iat` at or before `erased_at` is
    refused on its next request and cannot renew into that visitor, and their open live
    streams end. A token minted afterwards (the customer signs in again) is a new start.

    `digest` is `erased_visitor_digest(kind, value)`: HMAC-SHA256 under a key derived from
    SECRET_KEY of "visitor:<id>" or "customer:<id>", so the table names nobody. Rows older
    than the longest a token can still be presented (its lifetime plus the renewal window)
    are purged by the daily retention task."""

    digest = models.CharField(max_length=64)
    erased_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "digest"], name="unique_erased_visitor_digest")
        ]

    def __str__(self) -> str:
        return self.digest[:12]


def erased_visitor_digest(kind: str, value: str) -> str:
    """The keyed hash an `ErasedVisitor` row is stored under (`kind`: "visitor" or "customer")."""
    return salted_hmac("chat.ErasedVisitor", f"{kind}:{value}", algorithm="sha256").hexdigest()
