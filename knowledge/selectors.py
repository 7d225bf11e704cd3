"""Knowledge reads. Searching the knowledge for a question is `knowledge.retrieval`."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError

from core.errors import NotFound
from knowledge.models import KnowledgeSource


def source_list(*, organization, assistant=None, kind: str | None = None):
    """Sources of the organization (all, or the org-wide ones plus `assistant`'s), newest first."""
    sources = KnowledgeSource.objects.for_organization(organization)
    if assistant is not None:
        sources = sources.filter(assistant__isnull=True) | sources.filter(assistant=assistant)
    if kind:
        sources = sources.filter(kind=kind)
    return sources.order_by("-created_at")


def source_get(*, organization, source_id, kind: str | None = None) -> KnowledgeSource:
    sources = KnowledgeSource.objects.for_organization(organization)
    if kind:
        sources = sources.filter(kind=kind)
    try:
        return sources.get(pk=source_id)
    except (KnowledgeSource.DoesNotExist, ValueError, TypeError, DjangoValidationError) as error:
        # "Not yours", "does not exist" and "not an id" are the same answer.
        raise NotFound("Knowledge source not found.") from error
