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


def objects_of_every_kind(post, *, marker: str, customer_id: str, url: str) -> dict:
    """One of every object the API exposes, created through `post(path, body, file=None)` (a
    path under /api/v1/, a dict body, an optional `(name, bytes)` upload; returns the response's
    `data`), every one carrying `marker`. Returns `{"ids": {kind: id}, "messages": {kind: id}}`,
    kind being the collection path, and `{"actions": {"assistants": id}}` (an assistant's action,
    nested under it); the tenancy attack walk and the two-organization fuzzing both read their
    foreign objects from it."""
    assistant = post("assistants", {"name": f"{marker} bot"})
    action = post(
        f"assistants/{assistant['id']}/actions",
        {
            "name": "order_lookup",
            "description": f"{marker} order lookup",
            "url_template": "https://orders.shop-api.com/orders/{order_id}",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
            "headers": {"Authorization": f"Bearer {marker}"},
        },
    )
    # Subscribed before the conversation below starts, so it has one delivery in its log.
    webhook = post("webhooks", {"url": url, "events": ["conversation.created"], "description": marker})
    context = post("contexts", {"user_reference": customer_id, "traits": {"plan": marker}})
    widget = post("widgets", {"assistant_id": assistant["id"], "title": marker})
    session = post("sessions", {"assistant_id": assistant["id"], "visitor_id": f"v_{customer_id}"})
    session_message = post(f"sessions/{session['id']}/messages", {"content": f"{marker} question"})
    conversation = post(
        "conversations",
        {"assistant_id": assistant["id"], "customer_id": customer_id, "user_context_id": context["id"]},
    )
    conversation_message = post(f"conversations/{conversation['id']}/messages", {"content": marker})
    api_key = post("api-keys", {"name": f"{marker} key"})
    qa = post("knowledge/qa", {"question": f"{marker} refund?", "answer": marker})
    url_source = post("knowledge/urls", {"url": url, "title": marker})
    file_source = post(
        "knowledge/files",
        {"title": marker, "file_type": "text"},
        file=("manual.txt", f"{marker} manual".encode()),
    )
    return {
        "ids": {
            "assistants": assistant["id"],
            "contexts": context["id"],
            "widgets": widget["id"],
            "sessions": session["id"],
            "conversations": conversation["id"],
            "api-keys": api_key["id"],
            "knowledge/qa": qa["id"],
            "knowledge/urls": url_source["id"],
            "knowledge/files": file_source["id"],
            "webhooks": webhook["id"],
        },
        "messages": {"sessions": session_message["id"], "conversations": conversation_message["id"]},
        "actions": {"assistants": action["id"]},
    }
