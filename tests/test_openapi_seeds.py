"""The OpenAPI document (`/api/schema/`) against the two API references in SPEC's seeds.

Every field the references send or read is documented with its type; every field the seed
flows really receive is documented and has the documented type (no undocumented extras); and
each operation's `security` names exactly the credentials the server accepts there: the key
pair (`X-API-Key` + `X-API-Secret`, both), or the bearer secret, and a widget token only where
one is not refused with 403."""

from __future__ import annotations

import copy
import re
import uuid

import jsonschema
import pytest
from rest_framework.test import APIClient

from assistants.models import Assistant
from knowledge.services import qa_create
from testkit.documents import pdf_make
from widget.services import widget_create
from widget.tokens import widget_token_issue

pytestmark = pytest.mark.django_db

PAIR = {"ApiKeyId": [], "ApiKeySecret": []}
BEARER = {"ApiKeyBearer": []}
WIDGET = {"WidgetToken": []}
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def _resolve(schema: dict, node):
    while isinstance(node, dict) and "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    if isinstance(node, dict) and len(node.get("allOf", ())) == 1:
        merged = {**_resolve(schema, node["allOf"][0]), **{k: v for k, v in node.items() if k != "allOf"}}
        return merged
    return node


def _strict(schema: dict, node):
    """An OpenAPI 3.0 schema as JSON Schema, with `$ref`s inlined, `nullable` as a null type and
    objects that list their properties closed: a field the schema does not name fails."""
    node = copy.deepcopy(_resolve(schema, node))
    if not isinstance(node, dict):
        return node
    for key in ("oneOf", "anyOf"):
        if key in node:
            node[key] = [_strict(schema, option) for option in node[key]]
    if "properties" in node:
        node["properties"] = {name: _strict(schema, value) for name, value in node["properties"].items()}
        node.setdefault("additionalProperties", False)
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _strict(schema, node["additionalProperties"])
    if "items" in node:
        node["items"] = _strict(schema, node["items"])
    if node.pop("nullable", False):
        if "type" in node:
            node["type"] = [node["type"], "null"]
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
        elif "oneOf" in node:
            node["oneOf"].append({"type": "null"})
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


def _body_schema(schema: dict, path: str, method: str, status: int, media="application/json") -> dict:
    operation = schema["paths"][path][method]
    return operation["responses"][str(status)]["content"][media]["schema"]


def _request_schema(schema: dict, path: str, method: str, media="application/json") -> dict:
    body = schema["paths"][path][method]["requestBody"]["content"][media]["schema"]
    return _resolve(schema, body)


def _conforms(schema: dict, path: str, method: str, response, status: int) -> dict:
    assert response.status_code == status, response.content[:500]
    body = response.json()
    strict = _strict(schema, _body_schema(schema, path, method, status))
    errors = sorted(jsonschema.Draft7Validator(strict).iter_errors(body), key=lambda error: error.path)
    assert not errors, [f"{'/'.join(map(str, error.path))}: {error.message}" for error in errors]
    return body


# --- security --------------------------------------------------------------------------


def test_security_schemes_are_the_headers_the_references_send(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKeyId"] == {
        **schemes["ApiKeyId"],
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    assert schemes["ApiKeySecret"] == {
        **schemes["ApiKeySecret"],
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Secret",
    }
    assert schemes["ApiKeyBearer"]["type"] == "http" and schemes["ApiKeyBearer"]["scheme"] == "bearer"
    assert schemes["WidgetToken"]["bearerFormat"] == "JWT"


def test_each_operation_lists_exactly_the_credentials_it_accepts(schema, tenant):
    """A requirement object is an AND of its schemes, the list an OR: the key pair's two headers
    together, or the bearer secret, or (only where the server takes one) a widget token. Each
    claim is tried on the server: a widget token gets the generic 403 exactly where it is not
    listed; each listed API-key alternative authenticates."""
    token, _ = widget_token_issue(organization_id=tenant.organization.id, widget_id=None)
    visitor = APIClient()
    visitor.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    refused = "Widget tokens cannot access this endpoint."
    checked = widget_listed = 0
    for path, operations in schema["paths"].items():
        url = re.sub(r"\{[^}]+\}", lambda _match: str(uuid.uuid4()), path)
        for method in METHODS:
            if method not in operations:
                continue
            security = operations[method].get("security")
            if path == "/api/v1/auth/widget-token/":
                assert not security  # no credential: the client id is in the body
                continue
            assert security[:2] == [PAIR, BEARER], (method, path, security)
            assert set(map(frozenset, security[2:])) <= {frozenset(WIDGET)}, (method, path, security)
            listed = WIDGET in security
            response = getattr(visitor, method)(url, {}, format="json")
            body = response.json()
            if listed:
                widget_listed += 1
                assert body.get("detail") != refused, (method, path, response.status_code)
            else:
                assert (response.status_code, body["detail"]) == (403, refused), (method, path, body)
            checked += 1
    assert checked >= 60 and 10 <= widget_listed < checked / 2, (checked, widget_listed)
    # Management endpoints (SPEC: assistants, knowledge, contexts, keys) are key-only.
    for path in ("/api/v1/assistants/", "/api/v1/knowledge/qa/", "/api/v1/contexts/", "/api/v1/api-keys/"):
        assert WIDGET not in schema["paths"][path]["get"]["security"], path
    assert WIDGET not in schema["paths"]["/api/v1/sessions/{id}/"]["delete"]["security"]
    assert WIDGET in schema["paths"]["/api/v1/sessions/{id}/"]["get"]["security"]
    assert WIDGET not in schema["paths"]["/api/widget/chat/"]["post"]["security"]
    # Both API-key alternatives work as documented; the one combination the schema never lists
    # (a key id with a bearer secret) does not.
    pair = tenant.client()
    bearer = tenant.client(bearer=True)
    assert pair.get("/api/v1/assistants/").status_code == 200
    assert bearer.get("/api/v1/assistants/").status_code == 200
    mixed = APIClient()
    mixed.credentials(HTTP_X_API_KEY=tenant.client_id, HTTP_AUTHORIZATION=f"Bearer {tenant.client_secret}")
    assert mixed.get("/api/v1/assistants/").status_code == 401


def test_a_widget_token_cannot_delete_a_session(tenant):
    """SessionDetailApi takes a widget token for GET only (what the schema now says)."""
    from chat import services

    assistant = Assistant.objects.create(organization=tenant.organization, name="Helper")
    session = services.session_create(organization=tenant.organization, assistant=assistant, visitor_id="v1")
    token, _ = widget_token_issue(organization_id=tenant.organization.id, widget_id=None, visitor_id="v1")
    visitor = APIClient()
    visitor.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert visitor.get(f"/api/v1/sessions/{session.id}").status_code == 200
    response = visitor.delete(f"/api/v1/sessions/{session.id}")
    assert response.status_code == 403 and response.json()["status"] == "error"
    assert tenant.client().get(f"/api/v1/sessions/{session.id}").status_code == 200  # still there


# --- the references' fields, documented and typed -----------------------------------------

STRING, INTEGER, BOOLEAN, OBJECT, ARRAY = "string", "integer", "boolean", "object", "array"

# (path, method, media type, {field: type}) for each request body the references show.
REQUEST_FIELDS = [
    (
        "/api/widget/chat/",
        "post",
        "application/json",
        {"message": STRING, "widgetId": STRING, "sessionId": STRING, "context": OBJECT},
    ),
    ("/api/widget/scrape/", "post", "application/json", {"url": STRING}),
    ("/api/v1/auth/widget-token/", "post", "application/json", {"client_id": STRING, "config_id": STRING}),
    (
        "/api/v1/assistants/",
        "post",
        "application/json",
        {
            "name": STRING,
            "description": STRING,
            "tone": STRING,
            "language": STRING,
            "default_tasks": ARRAY,
            "is_active": BOOLEAN,
        },
    ),
    (
        "/api/v1/sessions/",
        "post",
        "application/json",
        {"assistant_id": STRING, "visitor_id": STRING, "locale": STRING, "metadata": OBJECT},
    ),
    ("/api/v1/sessions/{id}/messages/", "post", "application/json", {"content": STRING, "metadata": OBJECT}),
    (
        "/api/v1/conversations/",
        "post",
        "application/json",
        {
            "assistant_id": STRING,
            "customer_id": STRING,
            "user_context_id": STRING,
            "title": STRING,
            "locale": STRING,
            "metadata": OBJECT,
        },
    ),
    (
        "/api/v1/conversations/{id}/messages/",
        "post",
        "application/json",
        {"content": STRING, "metadata": OBJECT},
    ),
    ("/api/v1/contexts/", "post", "application/json", {"user_reference": STRING, "traits": OBJECT}),
    (
        "/api/v1/knowledge/files/",
        "post",
        "multipart/form-data",
        {"title": STRING, "file_type": STRING, "file": STRING},
    ),
    ("/api/v1/knowledge/urls/", "post", "application/json", {"url": STRING, "title": STRING}),
    (
        "/api/v1/knowledge/qa/",
        "post",
        "application/json",
        {"question": STRING, "answer": STRING, "tags": ARRAY, "source": STRING},
    ),
]


@pytest.mark.parametrize(
    ("path", "method", "media", "fields"), REQUEST_FIELDS, ids=[f"{m} {p}" for p, m, *_ in REQUEST_FIELDS]
)
def test_every_request_field_of_the_references_is_documented_with_its_type(
    schema, path, method, media, fields
):
    body = _request_schema(schema, path, method, media)
    for name, kind in fields.items():
        assert name in body["properties"], (path, name)
        assert _resolve(schema, body["properties"][name]).get("type") == kind, (
            path,
            name,
            body["properties"][name],
        )


def test_nested_seed_shapes_are_typed(schema):
    chat = _request_schema(schema, "/api/widget/chat/", "post")
    context = _resolve(schema, chat["properties"]["context"])
    rules = _resolve(schema, context["properties"]["rules"])
    assert {"companyName", "companyDescription", "policies", "tone"} <= set(rules["properties"])
    policy = rules["properties"]["policies"]["items"]
    assert policy["properties"] == {"title": {"type": "string"}, "content": {"type": "string"}}
    assert _resolve(schema, context["properties"]["scrapedData"])["type"] == STRING
    qa = _request_schema(schema, "/api/v1/knowledge/qa/", "post")
    assert qa["properties"]["tags"]["items"]["type"] == STRING
    file = _request_schema(schema, "/api/v1/knowledge/files/", "post", "multipart/form-data")
    assert file["properties"]["file"]["format"] == "binary"


# --- what the seed flows receive is what the schema says ----------------------------------


def test_seed_000_answers_match_the_schema(schema, tenant, settings):
    settings.LLM_MODEL = ""
    settings.LLM_PROVIDER = ""
    assistant = Assistant.objects.create(organization=tenant.organization, name="Helper")
    qa_create(
        organization=tenant.organization,
        question="What are your business hours?",
        answer="Our business hours are 9am-5pm EST, Monday through Friday.",
    )
    widget = widget_create(organization=tenant.organization, assistant_id=assistant.id, title="Help")
    client = tenant.client(bearer=True)
    chat = client.post(
        "/api/widget/chat",
        {
            "message": "What are your business hours?",
            "widgetId": str(widget.id),
            "sessionId": "user_session_123",
        },
        format="json",
    )
    answer = _conforms(schema, "/api/widget/chat/", "post", chat, 200)
    assert re.fullmatch(r"resp_\d+", answer["id"]) and answer["timestamp"].endswith("Z")
    config = client.get(f"/api/widget/config?widgetId={widget.id}")
    assert set(_conforms(schema, "/api/widget/config/", "get", config, 200)) == set(
        _resolve(schema, _body_schema(schema, "/api/widget/config/", "get", 200))["properties"]
    )


def test_seed_003_answers_match_the_schema(schema, tenant, settings):
    settings.LLM_MODEL = ""
    settings.LLM_PROVIDER = ""
    api = tenant.client()
    created = api.post(
        "/api/v1/assistants/",
        {
            "name": "Customer Support Bot",
            "description": "Helpful assistant for customer inquiries",
            "tone": "professional",
            "language": "en",
            "default_tasks": ["answer_questions", "provide_support"],
            "is_active": True,
        },
        format="json",
    )
    assistant_id = _conforms(schema, "/api/v1/assistants/", "post", created, 201)["data"]["id"]
    _conforms(schema, "/api/v1/assistants/", "get", api.get("/api/v1/assistants/"), 200)
    qa = api.post(
        "/api/v1/knowledge/qa/",
        {
            "question": "What are your business hours?",
            "answer": "We are open Monday to Friday, 9 AM to 6 PM EST.",
            "tags": ["hours", "support"],
        },
        format="json",
    )
    assert _conforms(schema, "/api/v1/knowledge/qa/", "post", qa, 201)["data"]["tags"] == ["hours", "support"]
    manual = api.post(
        "/api/v1/knowledge/files/",
        {"title": "Product Manual", "file_type": "pdf", "file": _pdf("product_manual.pdf")},
        format="multipart",
    )
    _conforms(schema, "/api/v1/knowledge/files/", "post", manual, 202)
    context = api.post(
        "/api/v1/contexts/",
        {"user_reference": "user-456", "traits": {"name": "John Doe", "preferences": {"language": "en"}}},
        format="json",
    )
    _conforms(schema, "/api/v1/contexts/", "post", context, 201)
    session = api.post(
        "/api/v1/sessions/",
        {
            "assistant_id": assistant_id,
            "visitor_id": "visitor-123",
            "locale": "en",
            "metadata": {"source": "website", "page": "/contact"},
        },
        format="json",
    )
    session_id = _conforms(schema, "/api/v1/sessions/", "post", session, 201)["data"]["id"]
    reply = api.post(
        f"/api/v1/sessions/{session_id}/messages",
        {"content": "What are your business hours?", "metadata": {"user_type": "customer"}},
        format="json",
    )
    message = _conforms(schema, "/api/v1/sessions/{id}/messages/", "post", reply, 201)["data"]
    assert message["sources"] and message["sources"][0]["type"] == "qa"
    listed = api.get(f"/api/v1/sessions/{session_id}/messages")
    _conforms(schema, "/api/v1/sessions/{id}/messages/", "get", listed, 200)
    conversation = api.post(
        "/api/v1/conversations/",
        {
            "assistant_id": assistant_id,
            "customer_id": "user-456",
            "user_context_id": "user-456",
            "title": "Order Support",
            "metadata": {"source": "product_page"},
        },
        format="json",
    )
    conversation_id = _conforms(schema, "/api/v1/conversations/", "post", conversation, 201)["data"]["id"]
    asked = api.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        {"content": "Can you help me track my order?", "metadata": {"order_id": "12345"}},
        format="json",
    )
    _conforms(schema, "/api/v1/conversations/{id}/messages/", "post", asked, 201)
    token = APIClient().post("/api/v1/auth/widget-token", {"client_id": tenant.client_id}, format="json")
    _conforms(schema, "/api/v1/auth/widget-token/", "post", token, 200)


def _pdf(name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, pdf_make(["Hold the power button for ten seconds."]), "application/pdf")
