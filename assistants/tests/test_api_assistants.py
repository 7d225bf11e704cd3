import pytest

from assistants.models import Assistant
from widget.tokens import widget_token_issue

pytestmark = pytest.mark.django_db

SEED_BODY = {
    "name": "Customer Support Bot",
    "description": "Helpful assistant for customer inquiries",
    "tone": "professional",
    "language": "en",
    "default_tasks": ["answer_questions", "provide_support"],
    "is_active": True,
}


def _assistant(tenant, **fields):
    values = {"name": "Helper"} | fields
    return Assistant.objects.create(organization=tenant.organization, **values)


def test_seed_curl_create_then_list(tenant):
    api = tenant.client()
    response = api.post("/api/v1/assistants/", SEED_BODY, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "success" and body["status_code"] == 201
    data = body["data"]
    assert {key: data[key] for key in SEED_BODY} == SEED_BODY
    assert data["model"] == "" and data["temperature"] == 0.2 and data["instructions"] == ""

    listed = api.get("/api/v1/assistants/").json()["data"]
    assert listed["count"] == 1 and listed["results"][0]["id"] == data["id"]
    assert set(listed) == {"count", "next", "previous", "results"}


def test_get_patch_delete(tenant, settings):
    settings.LLM_ALLOWED_MODELS = ["openai/gpt-4o-mini"]
    api = tenant.client(bearer=True)
    assistant = _assistant(tenant)
    url = f"/api/v1/assistants/{assistant.id}"
    assert api.get(url).json()["data"]["name"] == "Helper"
    patched = api.patch(
        url,
        {"instructions": "Always greet by name.", "model": "openai/gpt-4o-mini", "temperature": 0.7},
        format="json",
    )
    assert patched.status_code == 200, patched.content
    assistant.refresh_from_db()
    assert assistant.instructions == "Always greet by name." and assistant.model == "openai/gpt-4o-mini"
    assert assistant.temperature == 0.7 and assistant.name == "Helper"
    deleted = api.delete(url + "/")
    assert deleted.status_code == 200 and deleted.json()["data"] is None
    assert not Assistant.objects.for_organization(tenant.organization).exists()
    assert api.get(url).status_code == 404


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x", "temperature": 5}, "temperature"),
        ({"name": "x", "default_tasks": "answer_questions"}, "default_tasks"),
        ({"name": "x", "model": "http://evil.example/v1"}, "model"),
        ({"name": "x", "model": "ollama/llama3"}, "model"),  # not allowed by the operator
        ({"name": "x", "model": "0"}, "model"),
    ],
)
def test_validation_failures(tenant, body, field):
    response = tenant.client().post("/api/v1/assistants/", body, format="json")
    assert response.status_code == 400
    error = response.json()
    assert error["status"] == "error" and field in error["data"]
    assert not Assistant.objects.for_organization(tenant.organization).exists()


def test_cross_tenant_is_404_and_changes_nothing(tenant, other_tenant):
    assistant = _assistant(tenant, name="Mine")
    intruder = other_tenant.client()
    url = f"/api/v1/assistants/{assistant.id}"
    assert intruder.get(url).status_code == 404
    assert intruder.patch(url, {"name": "Hacked"}, format="json").status_code == 404
    assert intruder.put(url, {"name": "Hacked"}, format="json").status_code == 404
    assert intruder.delete(url).status_code == 404
    assert intruder.get("/api/v1/assistants/").json()["data"]["count"] == 0
    assistant.refresh_from_db()
    assert assistant.name == "Mine"


def test_mass_assignment_cannot_move_an_assistant_to_another_org(tenant, other_tenant):
    response = tenant.client().post(
        "/api/v1/assistants/",
        {"name": "Mine", "organization": str(other_tenant.organization.id)},
        format="json",
    )
    assert response.status_code == 201
    assert Assistant.objects.for_organization(tenant.organization).count() == 1
    assert not Assistant.objects.for_organization(other_tenant.organization).exists()


def test_widget_tokens_cannot_manage_assistants(tenant):
    token, _ = widget_token_issue(organization_id=tenant.organization.id)
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/assistants/").status_code == 403
    assert client.post("/api/v1/assistants/", {"name": "x"}, format="json").status_code == 403
    assert client.get("/api/v1/contexts/").status_code == 403


def test_model_must_be_one_the_operator_allows(tenant, settings):
    settings.LLM_MODEL = "openai/house-model"
    settings.LLM_ALLOWED_MODELS = ["anthropic/claude-x"]
    api = tenant.client()
    for allowed in ("openai/house-model", "anthropic/claude-x", "offline", ""):
        response = api.post("/api/v1/assistants/", {"name": "x", "model": allowed}, format="json")
        assert response.status_code == 201, response.content
    refused = api.post("/api/v1/assistants/", {"name": "x", "model": "openai/gpt-4-32k"}, format="json")
    assert refused.status_code == 400
    assert "openai/house-model, anthropic/claude-x, offline" in refused.json()["data"]["model"][0]


def test_a_withdrawn_model_falls_back_to_the_server_default(settings):
    from assistants.llm_models import model_resolve

    settings.LLM_MODEL = "openai/house-model"
    settings.LLM_ALLOWED_MODELS = []
    assert model_resolve(assistant_model="anthropic/claude-x") == "openai/house-model"
    assert model_resolve(assistant_model="offline") == "offline"
    settings.LLM_MODEL = ""
    assert model_resolve(assistant_model="openai/house-model") == "offline"
