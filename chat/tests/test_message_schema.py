"""The documented message shape holds for every reader: API keys get `tool_calls`, a widget
visitor's token does not, so the schema lists it without requiring it."""

import pytest

pytestmark = pytest.mark.django_db


def _message_component(client) -> dict:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()["components"]["schemas"]["Message"]


def test_tool_calls_is_documented_but_not_required(client):
    message = _message_component(client)
    assert "tool_calls" in message["properties"]
    assert "tool_calls" not in message["required"]
    # Everything every reader receives stays required.
    assert {"id", "conversation_id", "role", "content", "sources", "created_at", "status"} <= set(
        message["required"]
    )
