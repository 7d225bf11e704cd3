from __future__ import annotations

from django.db.models import QuerySet

from organizations.models import ApiKey, Membership, Organization


def organization_get_by_slug(*, slug: str) -> Organization | None:
    return Organization.objects.filter(slug=slug).first()


def api_key_list(*, organization: Organization) -> QuerySet[ApiKey]:
    return ApiKey.objects.for_organization(organization).order_by("-created_at")


def api_key_widget_facing(*, organization: Organization) -> ApiKey | None:
    """The key whose client_id a widget embeds (the oldest active one)."""
    return (
        ApiKey.objects.for_organization(organization)
        .filter(revoked_at__isnull=True)
        .order_by("created_at")
        .first()
    )


def membership_list_for_user(*, user) -> QuerySet[Membership]:
    return Membership.objects.unscoped().filter(user=user).select_related("organization")


def membership_get(*, organization: Organization, user) -> Membership | None:
    return Membership.objects.for_organization(organization).filter(user=user).first()


def membership_list(*, organization: Organization) -> QuerySet[Membership]:
    return Membership.objects.for_organization(organization).select_related("user").order_by("user__email")
