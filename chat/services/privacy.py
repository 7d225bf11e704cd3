"""Data-subject rights and retention: erase everything held about one person, delete one
conversation, and delete conversations older than an organization's retention period.

Erasure deletes rather than masks: a conversation (with its messages, feedback and per-message
usage figures) and the person's user contexts are removed; what other rows hold about them
(rate-limit buckets named after their visitor id) is removed too. Aggregate counters that
never held personal data (`LLMUsageDay`: tokens and cost per organization and day) keep their
numbers.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from assistants.models import UserContext
from chat.live import conversations_gone_publish
from chat.models import Conversation, CsatRating, ErasedVisitor, Message, erased_visitor_digest
from chat.selectors import Subject, subject_contexts, subject_conversations
from core.rate_counters import window_counts_delete
from organizations.audit import audit_scrub
from organizations.budgets import visitor_counter_keys
from organizations.models import Organization

logger = logging.getLogger(__name__)

RETENTION_BATCH_SIZE = 500


@transaction.atomic
def privacy_erase(*, organization: Organization, subject: Subject) -> dict[str, int]:
    """Delete everything held about one person; returns how many of each kind went."""
    conversations = subject_conversations(organization=organization, subject=subject)
    conversation_ids = list(conversations.values_list("pk", flat=True))
    visitor_ids: set[str] = set()
    customer_ids: set[str] = set()
    for visitor, customer in (
        Conversation.objects.for_organization(organization)
        .filter(pk__in=conversation_ids)
        .values_list("visitor_id", "customer_id")
    ):
        if visitor:
            visitor_ids.add(visitor)
        if customer:
            customer_ids.add(customer)
    if subject.kind == "visitor_id":
        visitor_ids.add(subject.value)
    elif subject.kind == "customer_id":
        customer_ids.add(subject.value)
    contexts = subject_contexts(organization=organization, subject=subject)
    context_ids = list(contexts.values_list("pk", flat=True))
    customer_ids.update(str(ref) for ref in contexts.values_list("user_reference", flat=True) if ref)
    personal_values = {
        subject.value,
        *[str(ref) for ref in contexts.values_list("user_reference", flat=True)],
    }
    personal_values.update(
        str(traits.get("email"))
        for traits in contexts.values_list("traits", flat=True)
        if isinstance(traits, dict) and traits.get("email")
    )
    counts = {
        "sessions": Conversation.objects.for_organization(organization)
        .filter(pk__in=conversation_ids, kind=Conversation.Kind.SESSION)
        .count(),
        "conversations": Conversation.objects.for_organization(organization)
        .filter(pk__in=conversation_ids, kind=Conversation.Kind.CONVERSATION)
        .count(),
        "messages": Message.objects.for_organization(organization)
        .filter(conversation_id__in=conversation_ids)
        .count(),
        "feedback": Message.objects.for_organization(organization)
        .filter(conversation_id__in=conversation_ids, feedback__isnull=False)
        .count(),
        "csat": CsatRating.objects.for_organization(organization)
        .filter(conversation_id__in=conversation_ids)
        .count(),
        "contexts": len(context_ids),
    }
    Message.objects.for_organization(organization).filter(conversation_id__in=conversation_ids).delete()
    Conversation.objects.for_organization(organization).filter(pk__in=conversation_ids).delete()
    UserContext.objects.for_organization(organization).filter(pk__in=context_ids).delete()
    # Without Redis, a visitor's own rate-limit buckets are rows keyed by a keyed hash of their
    # visitor id (exact keys: `window_counts_delete` hashes them as the counters do).
    counter_keys = [
        key
        for visitor in sorted(visitor_ids)
        for key in visitor_counter_keys(organization_id=organization.pk, visitor_id=visitor)
    ]
    counts["rate_counters"] = window_counts_delete(keys=counter_keys)
    _erased_visitors_remember(organization=organization, visitor_ids=visitor_ids, customer_ids=customer_ids)
    # Their open live streams end when this commits (the widget's reconnect then gets 401).
    conversations_gone_publish(conversation_ids=conversation_ids)
    # Erasure reaches the audit log too: events that named the person keep their action and
    # time, without the personal data.
    counts["audit_events"] = audit_scrub(organization=organization, values=sorted(personal_values))
    logger.info(
        "privacy erase in organization %s by %s: %s", organization.pk, subject.kind, counts
    )  # never the identifier itself
    return counts


def _erased_visitors_remember(*, organization: Organization, visitor_ids, customer_ids) -> None:
    """Credentials issued to these visitors and customers until now stop on their next use
    (`chat.selectors.token_erased_exists`): a widget token outlives nothing it was issued
    for. Stored as keyed hashes; erasing the same person again moves the time on."""
    now = timezone.now()
    rows = [
        ErasedVisitor(organization=organization, digest=erased_visitor_digest(kind, value), erased_at=now)
        for kind, values in (("visitor", visitor_ids), ("customer", customer_ids))
        for value in sorted(values)
    ]
    if rows:
        ErasedVisitor.objects.unscoped().bulk_create(
            rows, update_conflicts=True, unique_fields=["organization", "digest"], update_fields=["erased_at"]
        )


def erased_visitors_purge(*, now=None) -> int:
    """Forget erasures older than any token issued before them could still be presented
    (a token's lifetime, plus the week an anonymous visitor's expired token may renew)."""
    horizon = (
        settings.WIDGET_TOKEN_LIFETIME
        + settings.WIDGET_VISITOR_MAX_AGE
        + settings.WIDGET_VISITOR_RENEWAL_GRACE
        + timedelta(days=1)
    )
    cutoff = (now or timezone.now()) - horizon
    return ErasedVisitor.objects.unscoped().filter(erased_at__lt=cutoff).delete()[0]


@transaction.atomic
def conversation_delete(*, conversation: Conversation) -> None:
    Message.objects.for_organization(conversation.organization_id).filter(conversation=conversation).delete()
    conversation_id = conversation.pk
    conversation.delete()
    conversations_gone_publish(conversation_ids=[conversation_id])


def retention_sweep(*, organization: Organization, now=None, batch_size: int = RETENTION_BATCH_SIZE) -> int:
    """Delete the organization's conversations whose last message (or, without messages,
    creation) is older than its `retention_days`; returns how many went.

    Works in short transactions of `batch_size` conversations, so the table is never locked
    for long and a large backlog does not hold one huge transaction open.
    """
    if not organization.retention_days:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=organization.retention_days)
    deleted = 0
    while True:
        with transaction.atomic():
            batch = list(
                Conversation.objects.for_organization(organization)
                .annotate(last_activity=Coalesce("last_message_at", "created_at"))
                .filter(last_activity__lt=cutoff)
                .order_by("last_activity")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not batch:
                return deleted
            Message.objects.for_organization(organization).filter(conversation_id__in=batch).delete()
            conversations_gone_publish(conversation_ids=batch)
            deleted += (
                Conversation.objects.for_organization(organization)
                .filter(pk__in=batch)
                .delete()[1]
                .get("chat.Conversation", 0)
            )


def retention_sweep_all(*, now=None) -> dict[str, int]:
    """Run the retention sweep for every organization that has a retention period; returns
    conversations deleted per organization id (those with none deleted are left out)."""
    deleted = {}
    for organization in Organization.objects.filter(retention_days__isnull=False).order_by("pk"):
        count = retention_sweep(organization=organization, now=now)
        if count:
            deleted[str(organization.pk)] = count
            logger.info("retention: deleted %d conversations of organization %s", count, organization.pk)
    return deleted
