"""Tenant scoping, enforced in one place.

Every tenant-owned model inherits `TenantModel`. Its `objects` manager fails closed:
`Model.objects.all()`, `.filter()`, `.get()` raise `UnscopedQueryError`. The only ways
to rows are `Model.objects.for_organization(org)` and the explicit, greppable
`Model.objects.unscoped()` (for workers that re-fetch by id, migrations and operator
commands). Related managers reached from an already-fetched instance (e.g.
`conversation.messages`) use the plain first manager, filtered by that instance, and so
stay inside its tenant.
"""

from __future__ import annotations

import uuid

from django.db import models


class UnscopedQueryError(RuntimeError):
    """A tenant-owned model was queried without naming an organization."""


class TenantQuerySet(models.QuerySet):
    pass


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    def get_queryset(self) -> TenantQuerySet:
        raise UnscopedQueryError(
            f"{self.model.__name__}.objects needs .for_organization(org) (or an explicit .unscoped())."
        )

    def for_organization(self, organization) -> TenantQuerySet:
        if organization is None:
            raise UnscopedQueryError("for_organization() needs an organization, got None.")
        return super().get_queryset().filter(organization=organization)

    def unscoped(self) -> TenantQuerySet:
        return super().get_queryset()

    def create(self, **kwargs):
        if kwargs.get("organization") is None and kwargs.get("organization_id") is None:
            raise UnscopedQueryError(f"{self.model.__name__} must be created with an organization.")
        return self.unscoped().create(**kwargs)


class TenantModel(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    # Django's internals (validation, deletion, related managers) use the first manager;
    # application code uses `objects`, which refuses to run without an organization.
    all_organizations = models.Manager()
    objects = TenantManager()

    class Meta:
        abstract = True
