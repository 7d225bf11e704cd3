"""Dashboard: the action calls an answer made, shown in the playground and the inbox (with
the loopback LLM and the loopback orders API) — never with a header value."""

import pytest
from django.urls import reverse

from assistants import services
from chat import services as chat_services
from chat.models import Message
from chat.tests.orders_api import OrdersAPI

pytestmark = pytest.mark.django_db

SECRET = "sk_dash_secret_91b2c3d4e5"
SCHEMA = {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}


def test_inbox_and_playground_show_the_calls_but_never_the_secret(
    owner_client, tenant, assistant, llm, settings
):
    orders = OrdersAPI().start()
    try:
        settings.SCRAPE_ALLOWLIST = [orders.allow]
        settings.LLM_TOOL_CALLING = "on"
        services.action_create(
            organization=tenant.organization,
            assistant=assistant,
            name="order_lookup",
            description="Look up an order by its number.",
            url_template=f"{orders.base}/orders/{{order_id}}",
            parameters=SCHEMA,
            headers={"Authorization": f"Bearer {SECRET}"},
        )
        # The playground: the operator asks, the model calls the action.
        llm.then(tool_calls=[{"name": "order_lookup", "arguments": {"order_id": "A-1001"}}])
        playground = reverse("assistant-playground", args=[assistant.pk])
        response = owner_client.post(playground, {"content": "Where is A-1001?"}, HTTP_HX_REQUEST="true")
        html = response.content.decode()
        assert response.status_code == 200 and 'data-testid="tool-call"' in html
        assert "order_lookup" in html and "A-1001" in html and "shipped" in html
        assert orders.requests[0]["headers"]["authorization"] == f"Bearer {SECRET}"
        assert SECRET not in html
        answer = Message.objects.for_organization(tenant.organization).get(role="assistant")
        # The inbox shows the same call on the conversation.
        inbox = owner_client.get(
            reverse("inbox-conversation", args=[answer.conversation_id])
        ).content.decode()
        assert 'data-testid="tool-call"' in inbox and "&quot;order_id&quot;: &quot;A-1001&quot;" in inbox
        assert SECRET not in inbox

        # A failed call reads as failed, with the reason.
        orders.then(status=503, body={"error": "maintenance"})
        conversation = chat_services.session_create(organization=tenant.organization, assistant=assistant)
        llm.then(tool_calls=[{"name": "order_lookup", "arguments": {"order_id": "B-2002"}}])
        chat_services.message_post(conversation=conversation, content="And B-2002?", verified=True)
        inbox = owner_client.get(reverse("inbox-conversation", args=[conversation.pk])).content.decode()
        assert "the service answered HTTP 503" in inbox and "badge--danger" in inbox
        assert SECRET not in inbox
    finally:
        orders.stop()
