"""The overview's support-desk figures: handoffs, median time to the first human reply, CSAT
average and distribution, per day and per assistant."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from assistants.models import Assistant
from chat import selectors, services
from chat.models import Conversation, CsatRating
from supportai.overview import duration_text

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


def _handled(tenant, assistant, *, reply_after_seconds: int | None, score: int | None) -> Conversation:
    conversation = services.session_create(organization=tenant.organization, assistant=assistant)
    services.handoff_request(conversation=conversation)
    if reply_after_seconds is not None:
        services.operator_reply_post(conversation=conversation, user=tenant.owner, content="Hello, I'm here")
        Conversation.objects.for_organization(tenant.organization).filter(pk=conversation.pk).update(
            first_human_reply_at=conversation.handoff_requested_at + dt.timedelta(seconds=reply_after_seconds)
        )
    if score is not None:
        services.conversation_resolve(conversation=conversation, user=tenant.owner)
        services.csat_create(conversation=conversation, score=score)
    return conversation


def test_support_stats_per_period_day_and_assistant(tenant, other_tenant):
    sales = Assistant.objects.create(organization=tenant.organization, name="Sales")
    help_desk = Assistant.objects.create(organization=tenant.organization, name="Help desk")
    _handled(tenant, sales, reply_after_seconds=60, score=5)
    _handled(tenant, sales, reply_after_seconds=300, score=4)
    _handled(tenant, help_desk, reply_after_seconds=1200, score=1)
    _handled(tenant, help_desk, reply_after_seconds=None, score=None)  # still waiting
    services.session_create(organization=tenant.organization, assistant=sales)  # never handed off
    foreign = Assistant.objects.create(organization=other_tenant.organization, name="Elsewhere")
    _handled(other_tenant, foreign, reply_after_seconds=5, score=2)

    stats = selectors.support_stats(organization=tenant.organization, days=7)
    assert stats.handoffs == 4
    assert stats.median_first_reply_seconds == pytest.approx(300)
    assert stats.ratings == 3 and stats.csat_average == pytest.approx(10 / 3)
    assert stats.csat_distribution == {1: 1, 2: 0, 3: 0, 4: 1, 5: 1}
    today = stats.days[-1]
    assert today["date"] == timezone.localdate() and today["handoffs"] == 4 and today["ratings"] == 3
    assert sum(day["handoffs"] for day in stats.days[:-1]) == 0
    rows = {row["assistant"]: row for row in stats.per_assistant}
    assert rows["Sales"]["handoffs"] == 2 and rows["Sales"]["csat_average"] == pytest.approx(4.5)
    assert rows["Sales"]["median_first_reply_seconds"] == pytest.approx(180)
    assert rows["Help desk"]["handoffs"] == 2 and rows["Help desk"]["ratings"] == 1
    assert "Elsewhere" not in rows

    only_sales = selectors.support_stats(organization=tenant.organization, days=7, assistant=sales)
    assert only_sales.handoffs == 2 and only_sales.ratings == 2
    assert CsatRating.objects.for_organization(other_tenant.organization).count() == 1


def test_no_data_is_dashes_not_errors(tenant):
    stats = selectors.support_stats(organization=tenant.organization, days=30)
    assert stats.handoffs == 0 and stats.median_first_reply_seconds is None and stats.csat_average is None
    assert duration_text(None) == "—"
    assert [duration_text(s) for s in (45, 720, 3 * 3600, 3 * 86400)] == ["45 s", "12 min", "3.0 h", "3.0 d"]


def test_overview_shows_the_support_desk(owner_client, tenant):
    assistant = Assistant.objects.create(organization=tenant.organization, name="Sales")
    _handled(tenant, assistant, reply_after_seconds=720, score=4)
    html = owner_client.get(reverse("overview")).content.decode()
    assert 'data-testid="kpi-handoffs">1<' in html
    assert 'data-testid="kpi-first-reply">12 min<' in html
    assert 'data-testid="kpi-csat">4.0 / 5<' in html
    assert 'data-testid="support-per-assistant"' in html and "<td>Sales</td>" in html


def test_playground_handoffs_follow_the_include_playground_filter(owner_client, tenant):
    """Found on a new-user walk: the team tried "talk to a person" in the playground and the
    overview's support desk said 2 handoffs, "100 % of conversations", beside 1 conversation
    and a handoff rate counting 1: the support desk ignored "Include playground"."""
    assistant = Assistant.objects.create(organization=tenant.organization, name="Sales")
    _handled(tenant, assistant, reply_after_seconds=720, score=4)
    playground = _handled(tenant, assistant, reply_after_seconds=60, score=1)
    Conversation.objects.for_organization(tenant.organization).filter(pk=playground.pk).update(
        metadata={"source": "playground"}
    )
    stats = selectors.support_stats(organization=tenant.organization, days=7)
    assert stats.handoffs == 1 and stats.ratings == 1 and stats.csat_average == pytest.approx(4)
    assert stats.median_first_reply_seconds == pytest.approx(720)
    assert [row["handoffs"] for row in stats.per_assistant] == [1]
    assert sum(day["handoffs"] for day in stats.days) == 1
    both = selectors.support_stats(organization=tenant.organization, days=7, include_playground=True)
    assert both.handoffs == 2 and both.ratings == 2

    html = owner_client.get(reverse("overview")).content.decode()
    assert 'data-testid="kpi-handoffs">1<' in html and 'data-testid="kpi-csat">4.0 / 5<' in html
    html = owner_client.get(reverse("overview"), {"playground": "on"}).content.decode()
    assert 'data-testid="kpi-handoffs">2<' in html and 'data-testid="kpi-csat">2.5 / 5<' in html


def test_the_handoff_rate_does_not_say_a_waiting_visitor_reached_a_human(owner_client, tenant):
    """Found on a desk walk: with 24 visitors still waiting and 2 answered, the overview's
    handoff rate said "26 conversations reached a human"; it counts the handoffs asked for."""
    assistant = Assistant.objects.create(organization=tenant.organization, name="Sales")
    _handled(tenant, assistant, reply_after_seconds=None, score=None)  # waiting, nobody replied
    _handled(tenant, assistant, reply_after_seconds=None, score=None)
    html = owner_client.get(reverse("overview")).content.decode()
    assert "reached a human" not in html
    assert "2 conversations handed to a person" in html
