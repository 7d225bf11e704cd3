"""Saved replies: `/shortcut` in a reply sends the saved text, filled from context traits."""

from __future__ import annotations

import pytest
from django.urls import reverse

from assistants.models import UserContext
from chat import services
from chat.models import Message, SavedReply

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


def _saved(tenant, **fields) -> SavedReply:
    values = {
        "title": "Refund",
        "shortcut": "refund",
        "body": "Hi {{visitor.name}}, your {{ visitor.plan }} refund is on its way.",
    }
    return services.saved_reply_create(organization=tenant.organization, **(values | fields))


def test_a_shortcut_reply_sends_the_filled_text(agent_client, tenant, assistant, offline):
    _saved(tenant)
    context = UserContext.objects.create(
        organization=tenant.organization, user_reference="cust-1", traits={"name": "Ada", "plan": "gold"}
    )
    conversation = services.conversation_create(
        organization=tenant.organization, assistant=assistant, user_context=context
    )
    page = agent_client.get(reverse("inbox-conversation", args=[conversation.pk])).content.decode()
    assert "Hi Ada, your gold refund is on its way." in page  # pre-filled in the picker
    agent_client.post(reverse("inbox-reply", args=[conversation.pk]), {"content": "/refund"})
    reply = Message.objects.for_organization(tenant.organization).get(role="operator")
    assert reply.content == "Hi Ada, your gold refund is on its way."
    agent_client.post(reverse("inbox-reply", args=[conversation.pk]), {"content": "/unknown"})
    assert (
        Message.objects.for_organization(tenant.organization).filter(role="operator").last().content
        == "/unknown"
    )


def test_unknown_traits_are_empty_and_name_falls_back_to_metadata(tenant, assistant):
    _saved(tenant, shortcut="hi", body="Hello {{visitor.name}}{{visitor.missing}}!")
    session = services.session_create(
        organization=tenant.organization, assistant=assistant, metadata={"name": "Sam"}
    )
    assert services.saved_reply_expand(conversation=session, content="/hi") == "Hello Sam!"


def test_create_validates_and_is_per_organization(owner_client, foreign_client, tenant, other_tenant):
    url = reverse("inbox-saved-replies")
    assert (
        owner_client.post(url, {"title": "Hours", "shortcut": "/Hours", "body": "9 to 5"}).status_code == 302
    )
    assert SavedReply.objects.for_organization(tenant.organization).get().shortcut == "hours"
    bad = owner_client.post(url, {"title": "", "shortcut": "has space", "body": ""})
    assert bad.status_code == 400 and b"lower-case letters" in bad.content
    assert owner_client.post(url, {"title": "Again", "shortcut": "hours", "body": "x"}).status_code == 400
    saved = SavedReply.objects.for_organization(tenant.organization).get()
    assert foreign_client.post(url, {"delete": str(saved.pk)}).status_code == 404
    assert b"/hours" not in foreign_client.get(url).content
    assert owner_client.post(url, {"delete": str(saved.pk)}).status_code == 302
    assert not SavedReply.objects.for_organization(tenant.organization).exists()
    assert SavedReply.objects.for_organization(other_tenant.organization).count() == 0
