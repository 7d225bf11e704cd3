"""The waiting queue in the inbox: order, waiting time, reason, the bot's last answer; assign,
"mine", take over, resolve, reopen; the badge's JSON; tenancy and roles."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from assistants.models import Assistant
from chat import services
from chat.models import Conversation
from organizations.models import AuditEvent, Membership
from testkit.fixtures import member_add

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


@pytest.fixture
def assistant(tenant):
    return Assistant.objects.create(organization=tenant.organization, name="Helper")


def _waiting(tenant, assistant, *, minutes_ago: int, question: str, trigger="asked") -> Conversation:
    conversation = services.session_create(
        organization=tenant.organization, assistant=assistant, visitor_id=question[:8]
    )
    services.message_post(conversation=conversation, content=question)
    services.handoff_request(conversation=conversation, trigger=trigger)
    Conversation.objects.for_organization(tenant.organization).filter(pk=conversation.pk).update(
        handoff_requested_at=timezone.now() - dt.timedelta(minutes=minutes_ago)
    )
    return conversation


def test_queue_is_oldest_first_with_waiting_time_reason_and_last_answer(
    owner_client, tenant, assistant, offline
):
    newer = _waiting(tenant, assistant, minutes_ago=3, question="Where is my parcel number 123?")
    older = _waiting(
        tenant, assistant, minutes_ago=42, question="Can I pay by invoice?", trigger="unanswered"
    )
    services.session_create(organization=tenant.organization, assistant=assistant)  # a bot conversation
    page = owner_client.get(reverse("inbox") + "?status=waiting")
    html = page.content.decode()
    assert page.status_code == 200
    assert html.index(str(older.pk)) < html.index(str(newer.pk))
    assert page.context["page_obj"].paginator.count == 2
    assert "Waiting 42\xa0minutes" in html and "Unanswered questions in a row" in html
    assert "Bot:" in html  # the bot's last answer is shown
    assert re.search(r"data-queue-badge[^>]*>2<", html)


def test_queue_json_feeds_the_badge(owner_client, foreign_client, tenant, assistant, offline):
    assert owner_client.get(reverse("inbox-queue")).json() == {"waiting": 0, "latest": None}
    conversation = _waiting(tenant, assistant, minutes_ago=1, question="Hello, I need a hand")
    body = owner_client.get(reverse("inbox-queue")).json()
    assert body["waiting"] == 1 and body["latest"]["id"] == str(conversation.pk)
    assert body["latest"]["url"] == reverse("inbox-conversation", args=[conversation.pk])
    assert foreign_client.get(reverse("inbox-queue")).json() == {"waiting": 0, "latest": None}


def test_assign_to_me_to_an_agent_and_the_mine_filter(owner_client, tenant, assistant, offline):
    agent = member_add(tenant, role="agent", email="agent@acme.example")
    first = _waiting(tenant, assistant, minutes_ago=5, question="First visitor here")
    second = _waiting(tenant, assistant, minutes_ago=4, question="Second visitor here")
    assert owner_client.post(reverse("inbox-assign", args=[first.pk]), {"assignee": "me"}).status_code == 302
    assert (
        owner_client.post(reverse("inbox-assign", args=[second.pk]), {"assignee": str(agent.pk)}).status_code
        == 302
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.assigned_to == tenant.owner and second.assigned_to == agent
    assert first.handoff_status == "waiting"  # assigning is not taking over
    mine = owner_client.get(reverse("inbox") + "?mine=on").context["page_obj"]
    assert [item.pk for item in mine] == [first.pk]
    owner_client.post(reverse("inbox-assign", args=[first.pk]), {"assignee": ""})
    owner_client.post(reverse("inbox-assign", args=[first.pk]), {"assignee": ""})  # again: nothing changes
    first.refresh_from_db()
    assert first.assigned_to is None
    # Who works which conversation is in the audit log, as taking one over is.
    assigned = AuditEvent.objects.for_organization(tenant.organization).filter(action="conversation.assigned")
    assert list(assigned.order_by("created_at", "id").values_list("target_id", "changes")) == [
        (str(first.pk), {"assigned_to": [None, tenant.owner.email]}),
        (str(second.pk), {"assigned_to": [None, "agent@acme.example"]}),
        (str(first.pk), {"assigned_to": [tenant.owner.email, None]}),
    ]


def test_assigned_to_me_lists_my_open_work_not_resolved_ones(owner_client, tenant, assistant, offline):
    """The "Assigned to me" tab is what the operator still has to do: a resolved conversation leaves
    it (and its export), and the status filter can still ask for the resolved ones."""
    waiting = _waiting(tenant, assistant, minutes_ago=5, question="Still waiting here")
    taken = _waiting(tenant, assistant, minutes_ago=4, question="Being answered now")
    done = _waiting(tenant, assistant, minutes_ago=3, question="Already sorted out")
    for conversation in (waiting, taken, done):
        owner_client.post(reverse("inbox-assign", args=[conversation.pk]), {"assignee": "me"})
    owner_client.post(reverse("inbox-action", args=[taken.pk, "take-over"]))
    owner_client.post(reverse("inbox-action", args=[done.pk, "resolve"]))
    done.refresh_from_db()
    assert done.handoff_status == "resolved" and done.assigned_to == tenant.owner

    mine = owner_client.get(reverse("inbox") + "?mine=on").context["page_obj"]
    assert {item.pk for item in mine} == {waiting.pk, taken.pk}
    exported = owner_client.get(reverse("inbox-export"), {"mine": "on"}).content.decode()
    assert str(waiting.pk) in exported and str(done.pk) not in exported
    resolved = owner_client.get(reverse("inbox") + "?mine=on&status=resolved").context["page_obj"]
    assert [item.pk for item in resolved] == [done.pk]
    everything = owner_client.get(reverse("inbox")).context["page_obj"]
    assert done.pk in {item.pk for item in everything}


def test_assigning_to_someone_outside_the_organization_is_404(
    owner_client, tenant, other_tenant, assistant, offline
):
    conversation = _waiting(tenant, assistant, minutes_ago=1, question="Anyone there?")
    for assignee in (str(other_tenant.owner.pk), "999999", "not-a-number"):
        response = owner_client.post(reverse("inbox-assign", args=[conversation.pk]), {"assignee": assignee})
        assert response.status_code == 404
    conversation.refresh_from_db()
    assert conversation.assigned_to is None


def test_another_organization_cannot_see_assign_or_reply(foreign_client, tenant, assistant, offline):
    conversation = _waiting(tenant, assistant, minutes_ago=1, question="Private question")
    assert foreign_client.get(reverse("inbox-conversation", args=[conversation.pk])).status_code == 404
    assert (
        foreign_client.post(reverse("inbox-assign", args=[conversation.pk]), {"assignee": "me"}).status_code
        == 404
    )
    for action in ("take-over", "resolve", "reopen"):
        assert foreign_client.post(reverse("inbox-action", args=[conversation.pk, action])).status_code == 404
    assert (
        foreign_client.post(reverse("inbox-reply", args=[conversation.pk]), {"content": "hi"}).status_code
        == 404
    )
    assert b"Private question" not in foreign_client.get(reverse("inbox") + "?status=waiting").content
    conversation.refresh_from_db()
    assert conversation.handoff_status == "waiting" and conversation.assigned_to is None


def test_an_agent_works_the_queue_take_over_reply_resolve_reopen(agent_client, tenant, assistant, offline):
    conversation = _waiting(tenant, assistant, minutes_ago=2, question="Help with my order")
    url = reverse("inbox-action", args=[conversation.pk, "take-over"])
    assert agent_client.post(url).status_code == 302
    conversation.refresh_from_db()
    assert conversation.handoff_status == "human" and conversation.assigned_to.email.startswith("agent@")
    agent_client.post(reverse("inbox-reply", args=[conversation.pk]), {"content": "On it!"})
    conversation.refresh_from_db()
    assert conversation.first_human_reply_at is not None
    agent_client.post(reverse("inbox-action", args=[conversation.pk, "resolve"]))
    conversation.refresh_from_db()
    assert conversation.handoff_status == "resolved" and conversation.resolved_by.email.startswith("agent@")
    page = agent_client.get(reverse("inbox-conversation", args=[conversation.pk])).content.decode()
    assert "Reopen" in page
    agent_client.post(reverse("inbox-action", args=[conversation.pk, "reopen"]))
    conversation.refresh_from_db()
    assert conversation.handoff_status == "waiting" and conversation.handoff_trigger == "reopened"


def test_operators_are_shown_by_name_where_one_is_set(owner_client, tenant, assistant, offline):
    """The inbox names a teammate as the members page does: their name (escaped), else their
    email, in the list, the status badge, their messages and notes, and the assignee picker."""
    from django.test import Client

    agent = member_add(tenant, role="agent", email="ana@acme.example")
    agent.first_name, agent.last_name = "Ana <b>", "Ruiz"
    agent.save(update_fields=["first_name", "last_name"])
    member_add(tenant, role="agent", email="nameless@acme.example")
    agent_client = Client()
    agent_client.force_login(agent)
    taken = _waiting(tenant, assistant, minutes_ago=2, question="Help with my order")
    agent_client.post(reverse("inbox-action", args=[taken.pk, "take-over"]))
    agent_client.post(reverse("inbox-reply", args=[taken.pk]), {"content": "On it!"})
    agent_client.post(reverse("inbox-note", args=[taken.pk]), {"body": "Refund approved"})
    queued = _waiting(tenant, assistant, minutes_ago=1, question="Another question")
    assigned = owner_client.post(
        reverse("inbox-assign", args=[queued.pk]), {"assignee": str(agent.pk)}, follow=True
    ).content.decode()
    assert "Assigned to Ana &lt;b&gt; Ruiz." in assigned and "ana@acme.example" not in assigned

    name = "Ana &lt;b&gt; Ruiz"
    page = owner_client.get(reverse("inbox-conversation", args=[taken.pk])).content.decode()
    assert re.search(r'data-testid="handoff-status">Operator: ' + re.escape(name) + "<", page)
    assert re.search(r"<span>" + re.escape(name) + r" · \d\d:\d\d</span>", page)  # the reply's author
    assert f'<option value="{agent.pk}" selected>{name}</option>' in page
    assert f"{name} · " in page.split('data-testid="private-notes"')[1]
    assert ">nameless@acme.example</option>" in page  # no name: the email
    assert "ana@acme.example" not in page and "Ana <b>" not in page
    queue = owner_client.get(reverse("inbox") + "?status=waiting").content.decode()
    assert re.search(r'data-testid="waiting-info">.*· ' + re.escape(name) + "</div>", queue)
    assert "ana@acme.example" not in queue


def test_each_member_opts_in_to_handoff_emails(owner_client, agent_client, tenant):
    assert owner_client.post(reverse("inbox-notifications"), {"handoff_email": "on"}).status_code == 302
    assert agent_client.post(reverse("inbox-notifications"), {}).status_code == 302
    memberships = Membership.objects.for_organization(tenant.organization).select_related("user")
    assert {m.user.email: m.notify_handoff_email for m in memberships} == {
        tenant.owner.email: True,
        f"agent@{tenant.organization.slug}.example": False,
    }
    assert re.search(r'name="handoff_email"[^>]*checked', owner_client.get(reverse("inbox")).content.decode())


def test_the_reason_a_backend_gave_is_shown_to_the_operator(owner_client, tenant, assistant, offline):
    """Found on a desk walk: a backend's `POST …/handoff {"reason"}` was stored and returned by
    the API, but the queue and the conversation said only "visitor asked for a person"."""
    conversation = services.session_create(organization=tenant.organization, assistant=assistant)
    response = tenant.client().post(
        f"/api/v1/sessions/{conversation.pk}/handoff",
        {"reason": "Payment failed twice <b>VIP</b>"},
        format="json",
    )
    assert response.status_code == 200
    queue = owner_client.get(reverse("inbox") + "?status=waiting").content.decode()
    assert "Payment failed twice &lt;b&gt;VIP&lt;/b&gt;" in queue and "<b>VIP</b>" not in queue
    page = owner_client.get(reverse("inbox-conversation", args=[conversation.pk])).content.decode()
    (badge,) = re.findall(r'data-testid="handoff-status">([^<]*)<', page)
    assert "Payment failed twice" in badge
    # Asked by the backend, not the visitor: labelled so in the queue and the conversation.
    (info,) = re.findall(r'data-testid="waiting-info">(.*?)</div>', queue)
    assert "Handed over by your system" in info and "Visitor asked" not in info
    assert "handed over by your system" in badge and "visitor asked" not in badge
