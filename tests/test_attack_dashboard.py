"""Attack rows 36, 48, 49 on the operator dashboard (Django test client, real database):
stored XSS from every field a visitor or an API client can set is escaped on every page
that shows it; forms refuse cross-site posts; pages cannot be framed."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from organizations.models import ApiKey
from widget.tokens import widget_token_issue

pytestmark = pytest.mark.django_db

PAYLOADS = [
    "<script>alert('xss-1')</script>",
    '"><img src=x onerror=alert("xss-2")>',
    "<svg onload=alert('xss-3')>",
    "<iframe srcdoc='<script>alert(4)</script>'></iframe>",
    "javascript:alert('xss-5')",
]
DANGEROUS = ["<script>alert('xss-1')", "<img src=x onerror", "<svg onload", "<iframe srcdoc"]


def _data(response):
    assert response.status_code in (200, 201, 202), response.content[:400]
    return response.json()["data"]


@pytest.fixture
def poisoned(tenant):
    """Every visitor- or API-settable field carries a payload."""
    api = tenant.client()
    joined = " ".join(PAYLOADS)
    assistant = _data(
        api.post("/api/v1/assistants", {"name": PAYLOADS[0], "description": joined}, format="json")
    )
    _data(
        api.post(
            "/api/v1/contexts",
            {"user_reference": PAYLOADS[1], "traits": {"name": PAYLOADS[0], "email": PAYLOADS[1]}},
            format="json",
        )
    )
    widget = _data(
        api.post(
            "/api/v1/widgets",
            {"assistant_id": assistant["id"], "title": PAYLOADS[2], "greeting": joined},
            format="json",
        )
    )
    conversation = _data(
        api.post(
            "/api/v1/conversations",
            {
                "assistant_id": assistant["id"],
                "customer_id": PAYLOADS[1],
                "title": PAYLOADS[0],
                "metadata": {"name": PAYLOADS[0]},
            },
            format="json",
        )
    )
    api.post(f"/api/v1/conversations/{conversation['id']}/messages", {"content": joined}, format="json")
    token, _ = widget_token_issue(organization_id=tenant.organization.id, visitor_id=PAYLOADS[1][:60])
    visitor = APIClient()
    visitor.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    session = _data(
        visitor.post(
            "/api/v1/sessions",
            {"assistant_id": assistant["id"], "metadata": {"name": PAYLOADS[0]}},
            format="json",
        )
    )
    visitor.post(f"/api/v1/sessions/{session['id']}/messages", {"content": joined}, format="json")
    api.post("/api/v1/api-keys", {"name": PAYLOADS[0]}, format="json")
    from knowledge.services import qa_create

    qa_create(organization=tenant.organization, question=PAYLOADS[0], answer=joined, tags=[PAYLOADS[2][:40]])
    return {"assistant": assistant, "widget": widget, "conversation": conversation, "session": session}


def _operator(tenant) -> Client:
    client = Client()
    client.force_login(tenant.owner)
    return client


def test_stored_payloads_are_escaped_on_every_dashboard_page(tenant, poisoned):
    client = _operator(tenant)
    pages = [
        "/",
        "/inbox/",
        f"/inbox/{poisoned['conversation']['id']}/",
        f"/inbox/{poisoned['conversation']['id']}/messages/",
        f"/inbox/{poisoned['session']['id']}/",
        f"/inbox/{poisoned['session']['id']}/messages/",
        "/assistants/",
        f"/assistants/{poisoned['assistant']['id']}/",
        f"/assistants/{poisoned['assistant']['id']}/playground/",
        "/knowledge/",
        "/widgets/",
        f"/widgets/{poisoned['widget']['id']}/",
        f"/widgets/{poisoned['widget']['id']}/preview/",
        "/settings/",
        "/settings/api-keys/",
        "/settings/members/",
    ]
    shown = 0
    for page in pages:
        response = client.get(page, follow=True)
        assert response.status_code == 200, (page, response.status_code)
        html = response.content.decode()
        for dangerous in DANGEROUS:
            assert dangerous not in html, (page, dangerous)
        if "&lt;script&gt;alert(" in html or "&lt;img src=x onerror" in html:
            shown += 1
    assert shown >= 6  # the payloads really are on those pages, escaped


def test_dashboard_forms_refuse_cross_site_posts(tenant):
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenant.owner)
    before = ApiKey.objects.for_organization(tenant.organization).count()
    # No token at all (a form on evil.example auto-submitting).
    response = client.post("/settings/api-keys/", {"name": "stolen"}, HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 403
    # A token lifted from elsewhere but posted from a foreign origin.
    page = client.get("/settings/api-keys/")
    token = page.cookies["csrftoken"].value
    response = client.post(
        "/settings/api-keys/",
        {"name": "stolen", "csrfmiddlewaretoken": token},
        HTTP_ORIGIN="https://evil.example",
    )
    assert response.status_code == 403
    assert ApiKey.objects.for_organization(tenant.organization).count() == before
    # The same form from the dashboard itself works.
    response = client.post(
        "/settings/api-keys/",
        {"name": "legit", "csrfmiddlewaretoken": token},
        HTTP_ORIGIN="http://testserver",
    )
    assert response.status_code == 200
    assert ApiKey.objects.for_organization(tenant.organization).count() == before + 1


def test_dashboard_pages_cannot_be_framed_and_send_no_cors_grants(tenant):
    client = _operator(tenant)
    for page in ("/", "/inbox/", "/settings/api-keys/", "/login/"):
        response = client.get(page, HTTP_ORIGIN="https://evil.example")
        assert response["X-Frame-Options"] == "DENY", page
        assert "Access-Control-Allow-Origin" not in response, page
        assert "Access-Control-Allow-Credentials" not in response, page
        csp = response.get("Content-Security-Policy", "")
        if csp:
            assert "frame-ancestors 'none'" in csp or "frame-ancestors 'self'" in csp, (page, csp)


def test_session_cookie_flags(tenant):
    client = Client()
    response = client.post("/login/", {"username": tenant.owner.email, "password": "correct-horse-battery"})
    assert response.status_code == 302, response.content[:300]
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


def test_support_desk_webhook_audit_and_action_payloads_are_escaped(tenant, poisoned, monkeypatch):
    """The newer pages: the support desk (handoff reason and email, CSAT comment, operator
    reply, private note, saved reply), webhooks (description, and the receiver's answer shown
    in the delivery log), the audit log (a user agent), actions and an AI model label."""
    from assistants import llm_models
    from chat import services as chat_services
    from chat.models import Conversation
    from core import fetcher
    from organizations import audit
    from webhooks.models import Delivery

    monkeypatch.setattr(
        fetcher, "resolver", lambda host, port: ["93.184.216.34"]
    )  # names only, no connection
    organization = tenant.organization
    joined = " ".join(PAYLOADS)
    api = tenant.client()
    conversation = Conversation.objects.for_organization(organization).get(pk=poisoned["conversation"]["id"])
    chat_services.handoff_request(conversation=conversation, reason=joined, email="visitor@example.com")
    chat_services.conversation_note_add(conversation=conversation, user=tenant.owner, body=joined)
    chat_services.operator_reply_post(conversation=conversation, user=tenant.owner, content=joined)
    chat_services.conversation_resolve(conversation=conversation, user=tenant.owner)
    chat_services.csat_create(conversation=conversation, score=1, comment=joined)
    chat_services.saved_reply_create(
        organization=organization, title=PAYLOADS[0], shortcut="xss", body=joined
    )
    webhook = _data(
        api.post(
            "/api/v1/webhooks",
            {
                "url": "https://hooks.example.com/in",
                "events": ["conversation.created"],
                "description": joined,
            },
            format="json",
        )
    )
    api.post("/api/v1/conversations", {"assistant_id": poisoned["assistant"]["id"]}, format="json")
    Delivery.objects.for_organization(organization).update(response_excerpt=joined, error=PAYLOADS[1])
    action = _data(
        api.post(
            f"/api/v1/assistants/{poisoned['assistant']['id']}/actions",
            {
                "name": "lookup",
                "description": joined,
                "url_template": "https://orders.shop-api.com/orders/{order_id}",
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string", "description": joined}},
                    "required": ["order_id"],
                },
            },
            format="json",
        )
    )
    llm_models.connection_create(
        organization=organization,
        provider="openai",
        model="gpt-4o-mini",
        api_key="sk-own-1234567890",
        label=PAYLOADS[2],
    )
    audit.audit_record(
        organization=organization,
        action="settings.updated",
        actor=audit.AuditActor(name=PAYLOADS[1], kind="user", user_agent=joined),
        changes={"name": PAYLOADS[0]},
    )
    client = _operator(tenant)
    pages = [
        "/inbox/",
        f"/inbox/{conversation.pk}/",
        f"/inbox/{conversation.pk}/messages/",
        "/inbox/saved-replies/",
        "/settings/webhooks/",
        f"/settings/webhooks/{webhook['id']}/",
        "/settings/audit-log/",
        f"/assistants/{poisoned['assistant']['id']}/",
        f"/assistants/{poisoned['assistant']['id']}/actions/{action['id']}/",
        "/settings/ai-model/",
        "/settings/privacy/",
    ]
    shown = set()
    for page in pages:
        response = client.get(page, follow=True)
        assert response.status_code == 200, (page, response.status_code)
        html = response.content.decode()
        for dangerous in DANGEROUS:
            assert dangerous not in html, (page, dangerous)
        if "&lt;script&gt;alert(" in html or "&lt;img src=x onerror" in html or "&lt;svg onload" in html:
            shown.add(page)
    assert len(shown) >= 8, sorted(set(pages) - shown)  # the payloads really are there, escaped


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/", "/\\evil.example/", "https:evil.example", "\\\\evil.example",
     "http://testserver@evil.example/", "javascript:alert(1)"],
)  # fmt: skip
def test_login_and_logout_never_redirect_off_site(tenant, target):
    """Open redirects through `next` on sign-in and sign-out."""
    client = Client()
    response = client.post(
        f"/login/?next={target}",
        {"username": tenant.owner.email, "password": "correct-horse-battery", "next": target},
    )
    assert response.status_code == 302 and response["Location"] == "/", response.get("Location")
    response = client.post(f"/logout/?next={target}", {"next": target})
    assert response.status_code == 302 and response["Location"] == "/login/", response.get("Location")
    response = client.post(
        "/login/?next=/settings/", {"username": tenant.owner.email, "password": "correct-horse-battery"}
    )
    assert response["Location"] == "/settings/"  # a path on this site is still honoured


def test_every_dashboard_route_refuses_a_post_without_a_csrf_token(tenant):
    """Row 48 for every route, not one form: no dashboard view is exempt from CSRF (the API
    is, by DRF, but it accepts no session cookie)."""
    import uuid

    from django.urls import URLPattern, URLResolver, get_resolver, reverse

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield pattern.name, prefix + str(pattern.pattern), pattern.pattern.converters

    client = Client(enforce_csrf_checks=True)
    client.force_login(tenant.owner)
    checked = 0
    for name, route, converters in walk(get_resolver().url_patterns):
        if route.startswith("api/") or not name:
            continue
        kwargs = {
            key: uuid.uuid4() if "UUID" in type(converter).__name__ else "x"
            for key, converter in converters.items()
        }
        url = reverse(name, kwargs=kwargs)
        response = client.post(url, {"name": "stolen"}, HTTP_ORIGIN="https://evil.example")
        assert response.status_code == 403, (url, response.status_code)
        checked += 1
    assert checked >= 60
