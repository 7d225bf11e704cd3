"""Dashboard: an assistant's actions (list on the assistant page, add, edit, import, delete).
The calls they made, shown in the inbox and the playground: chat/tests/test_actions_dashboard.py."""

import json

import pytest
from django.urls import reverse

from assistants import actions as action_rules
from assistants.models import Action, Assistant
from organizations.models import AuditEvent

pytestmark = pytest.mark.django_db

SECRET = "sk_dash_secret_91b2c3d4e5"
SCHEMA = {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}


@pytest.fixture
def assistant(tenant):
    return Assistant.objects.create(organization=tenant.organization, name="Shop helper")


def _form(**fields):
    return {
        "name": "order_lookup",
        "description": "Look up an order by its number.",
        "method": "GET",
        "url_template": "https://orders.shop-api.com/orders/{order_id}",
        "parameters": json.dumps(SCHEMA),
        "headers": f"Authorization: Bearer {SECRET}\nX-Shop: acme",
        "is_active": "on",
    } | fields


def test_add_list_edit_delete_never_shows_header_values(owner_client, tenant, assistant):
    page = owner_client.get(reverse("assistant-edit", args=[assistant.pk]))
    assert page.status_code == 200 and 'data-testid="no-actions"' in page.content.decode()

    created = owner_client.post(reverse("assistant-action-create", args=[assistant.pk]), _form())
    assert created.status_code == 302, created.content.decode()[:2000]
    action = Action.objects.for_organization(tenant.organization).get()
    assert action.header_names == ["Authorization", "X-Shop"] and action.parameters == SCHEMA
    assert action_rules.headers_decrypt(action.headers)["Authorization"] == f"Bearer {SECRET}"

    listing = owner_client.get(reverse("assistant-edit", args=[assistant.pk])).content.decode()
    assert 'data-testid="action-row"' in listing and "order_lookup" in listing and "X-Shop" in listing
    edit_url = reverse("assistant-action-edit", args=[assistant.pk, action.pk])
    edit = owner_client.get(edit_url).content.decode()
    assert "Authorization" in edit and SECRET not in edit and SECRET not in listing

    # Remove one header, replace nothing else; the other stays (its value unseen).
    saved = owner_client.post(
        edit_url,
        _form(description="Order status by number.", headers="X-Trace: 1", remove_headers=["X-Shop"]),
    )
    assert saved.status_code == 302
    action.refresh_from_db()
    assert action.description == "Order status by number."
    assert action.header_names == ["Authorization", "X-Trace"]
    assert action_rules.headers_decrypt(action.headers)["Authorization"] == f"Bearer {SECRET}"

    delete_url = reverse("assistant-action-delete", args=[assistant.pk, action.pk])
    assert owner_client.get(delete_url).status_code == 200
    assert owner_client.post(delete_url).status_code == 302
    assert not Action.objects.for_organization(tenant.organization).exists()
    events = AuditEvent.objects.for_organization(tenant.organization).filter(action__startswith="action.")
    assert [event.action for event in events.order_by("created_at")] == [
        "action.created",
        "action.updated",
        "action.deleted",
    ]
    assert SECRET not in json.dumps([event.changes for event in events])


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"parameters": "{not json"}, "parameters", "Not valid JSON"),
        (
            {"parameters": json.dumps({"type": "object", "properties": {"x": {"type": 5}}})},
            "parameters",
            "JSON Schema",
        ),
        ({"url_template": "http://localhost/orders/{order_id}"}, "url_template", "cannot be called"),
        ({"url_template": "https://orders.shop-api.com/{missing}"}, "url_template", "not a property"),
        ({"headers": "no colon here"}, "headers", "Name: value"),
        ({"headers": "Host: evil"}, "headers", "set by the server"),
        ({"name": "has space"}, "name", "identifier"),
    ],
)
def test_bad_input_is_shown_on_the_form(owner_client, tenant, assistant, change, field, message):
    response = owner_client.post(reverse("assistant-action-create", args=[assistant.pk]), _form(**change))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert response.context["form"].errors.get(field), response.context["form"].errors
    assert not Action.objects.for_organization(tenant.organization).exists()


def test_duplicate_name_is_a_form_error(owner_client, tenant, assistant):
    url = reverse("assistant-action-create", args=[assistant.pk])
    assert owner_client.post(url, _form()).status_code == 302
    again = owner_client.post(url, _form())
    assert again.status_code == 400 and "already has an action with this name" in again.content.decode()


def test_prefill_from_an_openapi_operation(owner_client, tenant, assistant):
    operation = {
        "operationId": "getOrder",
        "description": "Returns an order.",
        "parameters": [{"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"}}],
    }
    response = owner_client.post(
        reverse("assistant-action-create", args=[assistant.pk]),
        {
            "prefill": "1",
            "document": json.dumps(operation),
            "path": "/orders/{order_id}",
            "import_method": "get",
            "base_url": "https://orders.shop-api.com/v1",
        },
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial["name"] == "getOrder"
    assert form.initial["url_template"] == "https://orders.shop-api.com/v1/orders/{order_id}"
    assert json.loads(form.initial["parameters"])["required"] == ["order_id"]
    assert not Action.objects.for_organization(tenant.organization).exists()  # nothing saved
    broken = owner_client.post(
        reverse("assistant-action-create", args=[assistant.pk]), {"prefill": "1", "document": "[1, 2"}
    )
    assert broken.status_code == 200 and broken.context["import_form"].errors["document"]


def test_agents_and_other_organizations_cannot_manage_actions(
    agent_client, foreign_client, owner_client, tenant, assistant
):
    owner_client.post(reverse("assistant-action-create", args=[assistant.pk]), _form())
    action = Action.objects.for_organization(tenant.organization).get()
    urls = [
        reverse("assistant-action-create", args=[assistant.pk]),
        reverse("assistant-action-edit", args=[assistant.pk, action.pk]),
        reverse("assistant-action-delete", args=[assistant.pk, action.pk]),
    ]
    for url in urls:
        assert agent_client.get(url).status_code == 403
        assert agent_client.post(url, _form(name="hijack")).status_code == 403
        assert foreign_client.get(url).status_code == 404
        assert foreign_client.post(url, _form(name="hijack")).status_code == 404
    # The agent sees the list (read only), without edit links.
    listing = agent_client.get(reverse("assistant-edit", args=[assistant.pk])).content.decode()
    assert "order_lookup" in listing and urls[1] not in listing
    action.refresh_from_db()
    assert action.name == "order_lookup"
    # Another assistant's URL with this action's id: 404.
    other = Assistant.objects.create(organization=tenant.organization, name="Other")
    assert owner_client.get(reverse("assistant-action-edit", args=[other.pk, action.pk])).status_code == 404
