"""Failures the proof found, kept as regression tests (each was a 500)."""

from __future__ import annotations

import pytest

from tests.conftest import assert_error_shape

pytestmark = pytest.mark.django_db


def test_widget_create_from_a_form_body_without_optional_fields(tenant):
    """Schemathesis: POST /api/v1/widgets as multipart with defaults left out → was a 500
    (the view read `request.data[name]` for serializer defaults the client never sent)."""
    api = tenant.client()
    assistant = api.post("/api/v1/assistants", {"name": "Form"}, format="json").json()["data"]
    created = api.post(
        "/api/v1/widgets",
        {"assistant_id": assistant["id"], "allowed_domains": ["https://a.example", "https://b.example"]},
        format="multipart",
    )
    assert created.status_code == 201, created.content
    assert created.json()["data"]["allowed_domains"] == ["https://a.example", "https://b.example"]
    json_created = api.post("/api/v1/widgets", {"assistant_id": assistant["id"]}, format="json")
    assert json_created.status_code == 201 and json_created.json()["data"]["is_active"] is True
    assert_error_shape(api.post("/api/v1/widgets", {"assistant_id": "nope"}, format="multipart"), 400)


def test_a_signed_widget_token_with_a_malformed_organization_claim_is_a_401(tenant):
    """JWT attack suite: `org` that is not a UUID reached the ORM and raised → was a 500."""
    import jwt
    from django.conf import settings

    from widget.tokens import widget_token_decode, widget_token_issue

    claims = widget_token_decode(widget_token_issue(organization_id=tenant.organization.id)[0])
    claims["org"] = "not-a-uuid"
    token = jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")
    from rest_framework.test import APIClient

    assert_error_shape(APIClient().get("/api/v1/organization", HTTP_AUTHORIZATION=f"Bearer {token}"), 401)


@pytest.mark.parametrize("kind", ["qa", "urls", "files"])
def test_knowledge_lists_refuse_a_malformed_assistant_filter_with_400(tenant, kind):
    """Schemathesis: `?assistant_id=<not a uuid>` reached the ORM → was a 500."""
    api = tenant.client()
    assert_error_shape(api.get(f"/api/v1/knowledge/{kind}?assistant_id=%C2%A0zz"), 400)
    listed = api.get(f"/api/v1/knowledge/{kind}?assistant_id=")
    assert listed.status_code == 200 and set(listed.json()["data"]) == {
        "count",
        "next",
        "previous",
        "results",
    }
