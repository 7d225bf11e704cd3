import json
import logging

import pytest
from django.db import connection

from assistants import actions as action_rules
from assistants.models import Action, Assistant
from organizations.models import AuditEvent
from widget.tokens import widget_token_issue

pytestmark = pytest.mark.django_db

SECRET = "sk_live_orders_ABCDEF0123456789"
BODY = {
    "name": "order_lookup",
    "description": "Look up an order's status and delivery date by its number.",
    "method": "get",
    "url_template": "https://orders.shop-api.com/api/orders/{order_id}",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string", "pattern": "^[A-Z0-9-]{3,20}$"}},
        "required": ["order_id"],
    },
    "headers": {"Authorization": f"Bearer {SECRET}", "X-Shop": "acme"},
    "requires_verified_visitor": True,
}


def _assistant(tenant, name="Helper"):
    return Assistant.objects.create(organization=tenant.organization, name=name)


def _url(assistant, action_id=None):
    base = f"/api/v1/assistants/{assistant.pk}/actions"
    return f"{base}/{action_id}" if action_id else base


def test_create_list_get_patch_delete_never_returns_header_values(tenant, caplog):
    caplog.set_level(logging.DEBUG)
    api = tenant.client()
    assistant = _assistant(tenant)
    created = api.post(_url(assistant) + "/", BODY, format="json")
    assert created.status_code == 201, created.content
    data = created.json()["data"]
    assert data["name"] == "order_lookup" and data["method"] == "GET"
    assert data["assistant_id"] == str(assistant.pk)
    assert data["header_names"] == ["Authorization", "X-Shop"]
    assert "headers" not in data and data["requires_verified_visitor"] is True and data["is_active"] is True
    assert SECRET not in created.content.decode()

    # At rest the value is encrypted (the row holds no plain text) and decrypts back.
    action = Action.objects.for_organization(tenant.organization).get()
    assert SECRET not in json.dumps(action.headers)
    with connection.cursor() as cursor:
        cursor.execute("SELECT headers::text FROM assistants_action WHERE id = %s", [action.pk])
        assert SECRET not in cursor.fetchone()[0]
    assert action_rules.headers_decrypt(action.headers)["Authorization"] == f"Bearer {SECRET}"

    listed = api.get(_url(assistant)).json()["data"]
    assert listed["count"] == 1 and listed["results"][0]["id"] == data["id"]
    fetched = api.get(_url(assistant, data["id"]))
    assert fetched.status_code == 200 and SECRET not in fetched.content.decode()

    # PATCH: a header value sets, null removes; the others stay.
    patched = api.patch(
        _url(assistant, data["id"]),
        {"description": "Order status by number.", "headers": {"X-Shop": None, "X-Trace": "1"}},
        format="json",
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["data"]["header_names"] == ["Authorization", "X-Trace"]
    action.refresh_from_db()
    assert action.description == "Order status by number."
    assert action_rules.headers_decrypt(action.headers)["Authorization"] == f"Bearer {SECRET}"

    # PUT replaces the whole set.
    put = api.put(_url(assistant, data["id"]), {**BODY, "headers": {"X-Only": "v"}}, format="json")
    assert put.status_code == 200, put.content
    assert put.json()["data"]["header_names"] == ["X-Only"]

    deleted = api.delete(_url(assistant, data["id"]))
    assert deleted.status_code == 200 and deleted.json()["data"] is None
    assert api.get(_url(assistant, data["id"])).status_code == 404

    # The audit log names the headers, never their values; nor does any log line.
    events = AuditEvent.objects.for_organization(tenant.organization).filter(action__startswith="action.")
    assert {event.action for event in events} == {"action.created", "action.updated", "action.deleted"}
    assert SECRET not in json.dumps([event.changes for event in events])
    assert SECRET not in caplog.text


def test_unique_name_per_assistant(tenant):
    api = tenant.client()
    assistant = _assistant(tenant)
    assert api.post(_url(assistant), BODY, format="json").status_code == 201
    again = api.post(_url(assistant), BODY, format="json")
    assert again.status_code == 409 and again.json()["data"]["name"]
    other = _assistant(tenant, name="Second")
    assert api.post(_url(other), BODY, format="json").status_code == 201


@pytest.mark.parametrize(
    "change, field",
    [
        ({"name": "order lookup"}, "name"),
        ({"name": "1lookup"}, "name"),
        ({"name": ""}, "name"),
        ({"description": "   "}, "description"),
        ({"method": "TRACE"}, "method"),
        ({"url_template": "ftp://orders.shop-api.com/{order_id}"}, "url_template"),
        ({"url_template": "https://{order_id}.shop.example/"}, "url_template"),
        ({"url_template": "https://user:pw@orders.shop-api.com/{order_id}"}, "url_template"),
        ({"url_template": "https://orders.shop-api.com/{order_id}#x"}, "url_template"),
        ({"url_template": "https://orders.shop-api.com/{order_id"}, "url_template"),
        ({"url_template": "https://orders.shop-api.com/{customer}"}, "url_template"),
        ({"url_template": "https://orders.shop-api.com/{order_id!r}"}, "url_template"),
        ({"url_template": "/relative/{order_id}"}, "url_template"),
        ({"url_template": "http://localhost/orders/{order_id}"}, "url_template"),
        ({"url_template": "http://169.254.169.254/latest/{order_id}"}, "url_template"),
        ({"url_template": "http://0x7f000001/orders/{order_id}"}, "url_template"),
        ({"url_template": "https://orders.shop-api.com:8443/orders/{order_id}"}, "url_template"),
        ({"url_template": "https://internal.shop-api.com/orders/{order_id}"}, "url_template"),
        ({"parameters": {"type": "object", "properties": {"order_id": {"type": "strng"}}}}, "parameters"),
        ({"parameters": {"type": "array"}}, "parameters"),
        ({"parameters": ["order_id"]}, "parameters"),
        (
            {"parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}},
            "url_template",
        ),  # a placeholder the schema does not require
        ({"headers": {"Host": "evil.example"}}, "headers"),
        ({"headers": {"X-Bad": "a\r\nInjected: 1"}}, "headers"),
        ({"headers": {"bad name": "v"}}, "headers"),
        ({"headers": ["Authorization"]}, "headers"),
        ({"requires_verified_visitor": "maybe"}, "requires_verified_visitor"),
    ],
)
def test_bad_inputs_are_400_with_the_field(tenant, change, field, monkeypatch):
    # A name that resolves to a private address (the fake resolver; nothing is contacted).
    from core import fetcher

    monkeypatch.setattr(
        fetcher,
        "resolver",
        lambda host, port: ["10.0.0.7"] if host.startswith("internal.") else ["93.184.215.14"],
    )
    api = tenant.client()
    assistant = _assistant(tenant)
    response = api.post(_url(assistant), {**BODY, **change}, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["status"] == "error" and field in body["data"], body
    assert not Action.objects.for_organization(tenant.organization).exists()


def test_patch_bad_input_keeps_the_action(tenant):
    api = tenant.client()
    assistant = _assistant(tenant)
    action_id = api.post(_url(assistant), BODY, format="json").json()["data"]["id"]
    response = api.patch(
        _url(assistant, action_id), {"url_template": "https://x.example/{nope}"}, format="json"
    )
    assert response.status_code == 400 and "url_template" in response.json()["data"]
    assert Action.objects.for_organization(tenant.organization).get().url_template == BODY["url_template"]


def test_malformed_json_and_unknown_ids(tenant):
    api = tenant.client()
    assistant = _assistant(tenant)
    broken = api.generic("POST", _url(assistant), "{not json", content_type="application/json")
    assert broken.status_code == 400 and broken.json()["status"] == "error"
    assert api.get(_url(assistant, "00000000-0000-0000-0000-000000000000")).status_code == 404
    assert api.get("/api/v1/assistants/00000000-0000-0000-0000-000000000000/actions").status_code == 404
    assert api.get(f"/api/v1/assistants/{assistant.pk}/actions/not-a-uuid").status_code == 404


def test_other_tenant_cannot_see_list_change_or_delete(tenant, other_tenant):
    assistant = _assistant(tenant)
    action_id = tenant.client().post(_url(assistant), BODY, format="json").json()["data"]["id"]
    foreign = other_tenant.client()
    for response in (
        foreign.get(_url(assistant)),
        foreign.post(_url(assistant), BODY, format="json"),
        foreign.get(_url(assistant, action_id)),
        foreign.patch(_url(assistant, action_id), {"is_active": False}, format="json"),
        foreign.delete(_url(assistant, action_id)),
    ):
        assert response.status_code == 404, response.content
        assert response.json()["detail"].endswith("not found.")
    # Nor through its own assistant's URL with our action id.
    own = _assistant(other_tenant, name="Theirs")
    assert foreign.get(_url(own, action_id)).status_code == 404
    assert foreign.delete(_url(own, action_id)).status_code == 404
    action = Action.objects.for_organization(tenant.organization).get()
    assert action.is_active and action.assistant_id == assistant.pk


def test_an_action_of_another_assistant_is_not_reachable_through_this_one(tenant):
    api = tenant.client()
    first, second = _assistant(tenant), _assistant(tenant, name="Second")
    action_id = api.post(_url(first), BODY, format="json").json()["data"]["id"]
    assert api.get(_url(second, action_id)).status_code == 404


def test_widget_token_and_no_credential_are_refused(tenant):
    assistant = _assistant(tenant)
    from rest_framework.test import APIClient

    anonymous = APIClient()
    assert anonymous.get(_url(assistant)).status_code == 401
    token, _ = widget_token_issue(organization_id=tenant.organization.id, visitor_id="v1")
    widget_client = APIClient()
    widget_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert widget_client.get(_url(assistant)).status_code == 403
    assert widget_client.post(_url(assistant), BODY, format="json").status_code == 403


OPENAPI = {
    "openapi": "3.0.3",
    "servers": [{"url": "https://orders.shop-api.com/api"}],
    "paths": {
        "/orders/{order_id}": {
            "get": {
                "operationId": "getOrder",
                "summary": "Get an order",
                "description": "Returns an order's status and delivery date.",
                "parameters": [
                    {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "expand", "in": "query", "schema": {"type": "boolean"}},
                    {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
                ],
            }
        }
    },
}


def test_import_an_openapi_operation_prefills_a_valid_action(tenant):
    api = tenant.client()
    assistant = _assistant(tenant)
    response = api.post(_url(assistant) + "/import-openapi", {"document": OPENAPI}, format="json")
    assert response.status_code == 200, response.content
    prefilled = response.json()["data"]
    assert prefilled == {
        "name": "getOrder",
        "description": "Returns an order's status and delivery date.",
        "method": "GET",
        "url_template": "https://orders.shop-api.com/api/orders/{order_id}",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "expand": {"type": "boolean"}},
            "required": ["order_id"],
        },
    }
    # What it prefills saves as is.
    assert api.post(_url(assistant), prefilled, format="json").status_code == 201
    # A single operation object, with where it lives.
    operation = OPENAPI["paths"]["/orders/{order_id}"]["get"]
    single = api.post(
        _url(assistant) + "/import-openapi",
        {
            "document": operation,
            "path": "/orders/{order_id}",
            "method": "get",
            "base_url": "https://o.shop-api.com",
        },
        format="json",
    )
    assert single.json()["data"]["url_template"] == "https://o.shop-api.com/orders/{order_id}"
    # Bad inputs.
    assert (
        api.post(_url(assistant) + "/import-openapi", {"document": "nope"}, format="json").status_code == 400
    )
    two = {"paths": {"/a": {"get": {}}, "/b": {"post": {}}}}
    response = api.post(_url(assistant) + "/import-openapi", {"document": two}, format="json")
    assert response.status_code == 400 and "path" in response.json()["data"]


def test_url_fill_encodes_every_argument():
    template = "https://orders.shop-api.com/api/orders/{order_id}?lang={lang}"
    url, rest = action_rules.url_fill(template, {"order_id": "A/../../admin?x=1#y", "lang": "fr", "extra": 1})
    assert url == "https://orders.shop-api.com/api/orders/A%2F..%2F..%2Fadmin%3Fx%3D1%23y?lang=fr"
    assert rest == {"extra": 1}
    for value in ("", ".", ".."):
        with pytest.raises(action_rules.ActionInvalid):
            action_rules.url_fill(template, {"order_id": value, "lang": "fr"})
