"""Inbox filters and overview statistics for the dashboard."""

import datetime as dt

import pytest
from django.utils import timezone

from chat import selectors, services
from chat.models import Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def traffic(tenant, assistant, faq, offline):
    answered = services.session_create(organization=tenant.organization, assistant=assistant)
    good = services.message_post(conversation=answered, content="What is your refund policy?")
    services.message_feedback_set(message=good, rating="up")
    unanswered = services.conversation_create(
        organization=tenant.organization, assistant=assistant, customer_id="c1"
    )
    bad = services.message_post(conversation=unanswered, content="Do you sell submarines?")
    services.message_post(conversation=unanswered, content="do you sell submarines")
    services.message_feedback_set(message=bad, rating="down")
    handed = services.session_create(organization=tenant.organization, assistant=assistant)
    services.message_post(conversation=handed, content="Human please")
    services.handoff_take_over(conversation=handed, user=tenant.owner)
    services.operator_reply_post(conversation=handed, user=tenant.owner, content="Hello!")
    return {"answered": answered, "unanswered": unanswered, "handed": handed}


def test_inbox_filters(tenant, other_tenant, traffic, assistant):
    org = tenant.organization

    def ids(**filters):
        return {c.id for c in selectors.conversation_list(organization=org, **filters)}

    assert ids() == {c.id for c in traffic.values()}
    assert ids(handed_off=True) == {traffic["handed"].id}
    assert ids(unanswered=True) >= {traffic["unanswered"].id}
    assert traffic["answered"].id not in ids(unanswered=True)
    assert ids(feedback="up") == {traffic["answered"].id}
    assert ids(feedback="down") == {traffic["unanswered"].id}
    assert ids(kind="conversation", customer_id="c1") == {traffic["unanswered"].id}
    assert ids(assistant=assistant) == ids()
    assert ids(date_from=timezone.localdate() + dt.timedelta(days=1)) == set()
    assert ids(search="submarines") == {traffic["unanswered"].id}
    assert not selectors.conversation_list(organization=other_tenant.organization).exists()
    newest_first = list(selectors.conversation_list(organization=org))
    assert newest_first[0].id == traffic["handed"].id and newest_first[0].message_count == 3


def test_stats(tenant, other_tenant, traffic):
    stats = selectors.chat_stats(organization=tenant.organization, days=7)
    assert len(stats.days) == 7 and stats.days[-1]["date"] == timezone.localdate()
    assert stats.conversations == 3 and stats.days[-1]["conversations"] == 3
    assert stats.answers == 4 and stats.answered == 1 and stats.unanswered == 3
    # "handed" was taken over; "unanswered" got two ungrounded answers in a row, which hands
    # it to a person automatically (the support desk's unanswered-streak trigger).
    assert stats.handed_off == 2 and stats.handoff_rate == pytest.approx(2 / 3)
    assert stats.feedback_up == 1 and stats.feedback_down == 1
    assert stats.top_unanswered[0]["question"].lower().startswith("do you sell submarines")
    assert stats.top_unanswered[0]["count"] == 2 and stats.top_unanswered[0]["handoff"]
    # The traffic was answered by the offline answerer: no LLM tokens to show.
    assert (stats.prompt_tokens, stats.completion_tokens) == (0, 0)
    assert Message.objects.for_organization(tenant.organization).filter(role="operator").count() == 1
    empty = selectors.chat_stats(organization=other_tenant.organization, days=7)
    assert empty.conversations == 0 and empty.answers == 0 and empty.handoff_rate == 0.0
