from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from core.tenancy import TenantModel


def default_rate_limit() -> int:
    return settings.RATELIMIT_DEFAULT_PER_HOUR


def default_llm_daily_token_budget() -> int:
    return settings.LLM_DAILY_TOKEN_BUDGET


class Organization(models.Model):
    """The tenant. Every other row in the database belongs to exactly one."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    rate_limit_per_hour = models.PositiveIntegerField(default=default_rate_limit)
    # LLM tokens (prompt + completion) this organization may spend per UTC day: 0 = no LLM
    # calls at all, null = unlimited (an operator's explicit choice, never the default).
    llm_daily_token_budget = models.PositiveIntegerField(
        null=True, blank=True, default=default_llm_daily_token_budget
    )
    # When people answer (the support desk): a time zone, opening ranges per weekday
    # ({"mon": [["09:00", "17:00"]], …}; none at all = always open) and closed dates.
    business_timezone = models.CharField(max_length=64, default="UTC")
    business_hours = models.JSONField(default=dict, blank=True)
    business_holidays = models.JSONField(default=list, blank=True)
    # Privacy: conversations whose last message is older than this many days are deleted by
    # a daily task (null = kept until deleted or erased).
    retention_days = models.PositiveIntegerField(null=True, blank=True, default=None)
    # Uploaded knowledge files are deleted once parsed (their text and chunks stay) unless on.
    keep_original_files = models.BooleanField(default=False)
    # The embedder the knowledge is searched with ("default": the server's, English;
    # "multilingual": one vector space for many languages; knowledge.embeddings.CHOICES), and
    # the one a switch is re-embedding the knowledge with ("" when none is running). Search
    # keeps using `knowledge_embedder` until the switch swaps the new vectors in.
    knowledge_embedder = models.CharField(max_length=20, default="default")
    knowledge_embedder_next = models.CharField(max_length=20, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(TenantModel):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        AGENT = "agent", "Agent"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.AGENT)
    # When the user last chose this organization in the dashboard: after the next login the
    # dashboard opens where they left off, not in their alphabetically first organization.
    last_selected_at = models.DateTimeField(null=True, blank=True)
    # Each member chooses for themselves (in the inbox): one email per handoff to a person.
    notify_handoff_email = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="unique_membership")]

    @property
    def can_manage(self) -> bool:
        return self.role in {self.Role.OWNER, self.Role.ADMIN}


class ApiKey(TenantModel):
    """A client id (public) and a client secret (shown once, stored only as a hash).

    The secret looks like `sk_<lookup>_<random>`: the lookup part is stored in clear as
    `secret_prefix`, so a bearer secret is found by one indexed query and then compared
    in constant time against its SHA-256 hash.
    """

    name = models.CharField(max_length=100)
    client_id = models.CharField(max_length=64, unique=True)
    secret_prefix = models.CharField(max_length=32, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who made it, kept when their account is deleted (`created_by` then becomes null): a key
    # with neither was made by an operator command, which is what may administer without a
    # maker — a deleted person's key must not turn into one.
    created_by_email = models.CharField(max_length=254, blank=True, default="")
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def masked_secret(self) -> str:
        return f"{self.secret_prefix}…"


class LLMUsageDay(TenantModel):
    """What one organization spent on LLM calls in one UTC day (the budget's meter).

    One row per (organization, day), incremented in place by a single
    `INSERT … ON CONFLICT DO UPDATE` after every metered call, so concurrent web
    processes add up exactly. `alerted_percent` remembers the highest budget threshold
    (80, 100) already logged today, so each alert is logged once.
    """

    day = models.DateField()
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    calls = models.PositiveIntegerField(default=0)
    alerted_percent = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "day"], name="unique_llm_usage_day")]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.day}: {self.total_tokens} tokens"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Invitation(TenantModel):
    """An invitation to join an organization. Nothing changes for the invitee until they open
    the emailed link and accept: no membership (and, for a new address, no user) exists
    before that. Only a SHA-256 of the link's token is stored."""

    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Membership.Role.choices, default=Membership.Role.AGENT)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    sent_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-sent_at"]
        constraints = [
            # At most one open invitation per address and organization (a re-invite replaces it).
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=models.Q(accepted_at__isnull=True, declined_at__isnull=True),
                name="unique_open_invitation",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.organization_id} ({self.role})"

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.declined_at is None


class BudgetAlert(TenantModel):
    """One threshold (80 %, 100 %) of one of the owner's rate budgets, crossed in one window.

    Recorded by the request whose count reached the threshold (the counters are atomic, so
    exactly one does); the unique constraint keeps it to one row, hence one banner and one
    email, per budget, threshold and window however many processes race.
    """

    policy = models.CharField(max_length=40)  # "org", "widget-messages", "widget-token-client"
    key = models.CharField(max_length=250)  # which budget of that policy (organization, widget, client id)
    percent = models.PositiveSmallIntegerField()
    used = models.PositiveIntegerField()
    limit = models.PositiveIntegerField()
    window_seconds = models.PositiveIntegerField()
    window_end = models.DateTimeField()
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "policy", "key", "window_end", "percent"], name="unique_budget_alert"
            )
        ]
        indexes = [models.Index(fields=["organization", "window_end"], name="budget_alert_window")]

    def __str__(self) -> str:
        return f"{self.policy}:{self.key} {self.percent}% until {self.window_end:%H:%M}"


class IdentitySecret(TenantModel):
    """The secret an organization's own servers use to prove who a widget visitor is
    (HMAC of the user id, or an HS256 JWT). We must be able to *use* it to verify, so it is
    stored encrypted (Fernet, key derived from SECRET_KEY — see organizations.identity),
    never plain and never as a one-way hash. Rotation keeps the previous one valid until
    `expires_at` (the grace period), so pages already rendered with the old hash keep working.
    """

    secret_encrypted = models.TextField()
    # The last 4 characters, to tell secrets apart in the dashboard without revealing them.
    hint = models.CharField(max_length=8)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "expires_at"], name="identity_secret_org_expiry")]

    def __str__(self) -> str:
        return f"…{self.hint}"


class Event(TenantModel):
    """Something that happened in an organization that others may react to (append-only).

    Written by `organizations.services.event_emit` only; never updated or deleted (they go
    with their organization). Types are SPEC's webhook event names (`handoff.requested`,
    `conversation.resolved`, `csat.created`, …); `data` holds ids and small facts, never
    message text or secrets, so an event can be delivered to a webhook as it is.
    """

    type = models.CharField(max_length=100)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "type", "-created_at"], name="org_event_type_created")
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.created_at:%Y-%m-%d %H:%M}"


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit events are append-only.")

    def delete(self):
        raise PermissionError("Audit events are append-only.")


class AuditEventManager(models.Manager.from_queryset(AuditEventQuerySet)):
    def for_organization(self, organization) -> AuditEventQuerySet:
        if organization is None:
            from core.tenancy import UnscopedQueryError

            raise UnscopedQueryError("for_organization() needs an organization, got None.")
        return self.get_queryset().filter(organization=organization)


class AuditEvent(models.Model):
    """One account-changing action: who (a user or an API key, by name), from where, on what,
    and which fields changed — never a secret and never a message text.

    Append-only twice over: this model and its queryset refuse update and delete, and a
    PostgreSQL trigger (migration 0008) refuses UPDATE and DELETE of the table for everyone
    except erasure scrubbing (organizations.audit.audit_scrub), which sets a
    transaction-local flag to blank personal data in place.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.DO_NOTHING, related_name="+", db_constraint=True
    )
    action = models.CharField(max_length=64)
    actor = models.CharField(max_length=255, blank=True, default="")  # email, or "api_key:<name>"
    actor_type = models.CharField(max_length=16, blank=True, default="")  # user | api_key | system
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True, default="")
    target_type = models.CharField(max_length=64, blank=True, default="")
    target_id = models.CharField(max_length=64, blank=True, default="")
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AuditEventManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="audit_org_created"),
            models.Index(fields=["organization", "action", "-created_at"], name="audit_org_action"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only.")
