"""Fixtures and helpers every app's tests use (imported by the root conftest)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from organizations.models import Membership, Organization
from organizations.services import api_key_create, organization_create


@dataclass
class Tenant:
    organization: Organization
    client_id: str
    client_secret: str
    owner: object

    def client(self, *, bearer: bool = False) -> APIClient:
        """An API client authenticated with this tenant's key (pair headers or bearer)."""
        client = APIClient()
        if bearer:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.client_secret}")
        else:
            client.credentials(HTTP_X_API_KEY=self.client_id, HTTP_X_API_SECRET=self.client_secret)
        return client


def tenant_create(name: str, *, rate_limit_per_hour: int | None = None) -> Tenant:
    slug = name.lower().replace(" ", "-")
    organization = organization_create(
        name=name,
        owner_email=f"owner@{slug}.example",
        owner_password="correct-horse-battery",
        rate_limit_per_hour=rate_limit_per_hour,
    )
    api_key, secret = api_key_create(organization=organization, name="test key")
    owner = Membership.objects.for_organization(organization).get().user
    return Tenant(organization=organization, client_id=api_key.client_id, client_secret=secret, owner=owner)


@pytest.fixture
def tenant(db) -> Tenant:
    return tenant_create("Acme Inc")


@pytest.fixture
def other_tenant(db) -> Tenant:
    return tenant_create("Globex Corp")


@pytest.fixture
def api(tenant) -> APIClient:
    return tenant.client()


@pytest.fixture
def other_api(other_tenant) -> APIClient:
    return other_tenant.client()


def member_add(tenant: Tenant, *, role: str, email: str | None = None):
    """A user with `role` in `tenant`'s organization (password 'correct-horse-battery')."""
    from organizations.services import membership_create, user_get_or_create

    email = email or f"{role}@{tenant.organization.slug}.example"
    user = user_get_or_create(email=email, password="correct-horse-battery")
    membership_create(organization=tenant.organization, user=user, role=role)
    return user


@pytest.fixture
def owner_client(tenant):
    """A Django test client signed in to the dashboard as `tenant`'s owner."""
    from django.test import Client

    client = Client()
    client.force_login(tenant.owner)
    return client


@pytest.fixture
def agent_client(tenant):
    from django.test import Client

    client = Client()
    client.force_login(member_add(tenant, role="agent"))
    return client


@pytest.fixture
def foreign_client(other_tenant):
    """Signed in as the owner of another organization."""
    from django.test import Client

    client = Client()
    client.force_login(other_tenant.owner)
    return client


@pytest.fixture
def fast_password_hashing(settings):
    """Dashboard tests create many users; the production hasher costs ~0.5 s each here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
