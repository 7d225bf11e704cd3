"""The inbox at shop scale: its first page reads a page of an index that matches its ordering,
counts messages only for the page's conversations, and pages through every conversation once
in the order and with the counts the earlier join-and-GROUP-BY query gave."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, F
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from assistants.models import Assistant
from chat import selectors, services
from chat.models import Conversation, Message
from testkit.inbox import conversations_insert

pytestmark = pytest.mark.django_db


@pytest.fixture
def assistant(tenant):
    return Assistant.objects.create(organization=tenant.organization, name="Helper")


def _reference(organization, **criteria) -> list[tuple]:
    """What the inbox listed before: a join on every message and GROUP BY, in the same order
    (now ending in the primary key)."""
    queryset = Conversation.objects.for_organization(organization).annotate(reference_count=Count("messages"))
    for name, value in criteria.items():
        queryset = queryset.filter(**{name: value})
    if criteria.get("handoff_status") == Conversation.HandoffStatus.WAITING:
        ordered = queryset.order_by("handoff_requested_at", "created_at", "id")
    else:
        ordered = queryset.order_by(F("last_message_at").desc(nulls_last=True), "-created_at", "-id")
    return [(row.pk, row.reference_count) for row in ordered]


def _explain(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_order_counts_and_pages_are_those_of_the_join_with_ties_and_no_messages(
    tenant, other_tenant, assistant, offline
):
    now = timezone.now()
    conversations = []
    for index, messages in enumerate([0, 1, 3, 0, 2, 1, 4, 0, 2]):
        conversation = services.session_create(
            organization=tenant.organization, assistant=assistant, visitor_id=f"v{index}"
        )
        for number in range(messages):
            services.message_post(conversation=conversation, content=f"question {number}")
        conversations.append(conversation)
    # Ties on last_message_at and on created_at (the primary key decides), and three without
    # any message (NULL last activity: after every one with).
    same = now - dt.timedelta(hours=1)
    for index, conversation in enumerate(conversations):
        Conversation.objects.for_organization(tenant.organization).filter(pk=conversation.pk).update(
            created_at=same - dt.timedelta(minutes=index % 2),
            last_message_at=None
            if conversation.last_message_at is None
            else same + dt.timedelta(minutes=index % 3),
        )
    other_assistant = Assistant.objects.create(organization=other_tenant.organization, name="Other")
    elsewhere = services.session_create(organization=other_tenant.organization, assistant=other_assistant)
    services.message_post(conversation=elsewhere, content="another organization's question")

    listed = list(selectors.conversation_list(organization=tenant.organization))
    expected = _reference(tenant.organization)
    assert [(row.pk, row.message_count) for row in listed] == expected
    counts = {count for _pk, count in expected}
    assert 0 in counts and len(counts) >= 4  # the counts tell conversations apart
    assert elsewhere.pk not in {row.pk for row in listed}

    # Pages of 2 (as the paginators slice): every conversation once, in the same order.
    paginator = Paginator(selectors.conversation_list(organization=tenant.organization), 2)
    paged = [(row.pk, row.message_count) for number in paginator.page_range for row in paginator.page(number)]
    assert paginator.count == len(conversations)
    assert paged == expected


@pytest.fixture
def many(tenant, assistant):
    """3,000 conversations (about 11,000 messages), then ANALYZE: the planner's real choice."""
    with connection.cursor() as cursor:
        conversations_insert(
            cursor, organization=tenant.organization, assistant=assistant, operator=tenant.owner, count=3000
        )
    return tenant


@pytest.mark.parametrize(
    ("criteria", "indexes"),
    # A kind that is most of the conversations (80 % sessions here) may read either index.
    [
        ({}, {"chat_conv_org_activity"}),
        ({"kind": Conversation.Kind.CONVERSATION}, {"chat_conv_org_kind_activity"}),
        ({"kind": Conversation.Kind.SESSION}, {"chat_conv_org_kind_activity", "chat_conv_org_activity"}),
        ({"handoff_status": Conversation.HandoffStatus.WAITING}, {"chat_conv_org_waiting_queue"}),
        ({"handoff_status": Conversation.HandoffStatus.RESOLVED}, {"chat_conv_org_activity"}),
    ],
)
def test_the_first_page_reads_an_index_in_order_and_counts_only_its_rows(many, criteria, indexes):
    queryset = selectors.conversation_list(organization=many.organization, **criteria)
    plan = _explain(queryset[:20])
    assert any(f"Index Scan using {name} on chat_conversation" in plan for name in indexes), plan
    assert "Sort" not in plan, plan  # no sort of the organization's conversations
    assert "Seq Scan on chat_message" not in plan, plan
    # The paginators' count reads conversations only.
    with CaptureQueriesContext(connection) as captured:
        queryset.count()
    assert "chat_message" not in captured.captured_queries[-1]["sql"]
    # Same rows, order and counts as the join it replaced (the first pages: 3,000 rows' join
    # is the slow thing this test is not about).
    reference = _reference(many.organization, **criteria)
    assert [(row.pk, row.message_count) for row in queryset[:50]] == reference[:50]
    assert queryset.count() == len(reference)


def test_queries_per_inbox_page_do_not_grow_with_the_conversations(
    tenant, assistant, owner_client, django_assert_max_num_queries
):
    def statements(url: str, client) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured.captured_queries)

    api = tenant.client()
    pages = [
        (reverse("inbox"), owner_client),
        (reverse("inbox") + "?status=waiting", owner_client),
        (reverse("inbox") + "?mine=on", owner_client),
        ("/api/v1/sessions", api),
        ("/api/v1/conversations", api),
    ]
    with connection.cursor() as cursor:
        conversations_insert(
            cursor, organization=tenant.organization, assistant=assistant, operator=tenant.owner, count=200
        )
    few = [statements(url, client) for url, client in pages]
    with connection.cursor() as cursor:
        conversations_insert(
            cursor, organization=tenant.organization, assistant=assistant, operator=tenant.owner, count=2000
        )
    assert Conversation.objects.for_organization(tenant.organization).count() == 2200
    for (url, client), before in zip(pages, few, strict=True):
        with django_assert_max_num_queries(before):
            assert client.get(url).status_code == 200, url


@pytest.mark.parametrize(
    ("criteria", "flagged", "index"),
    [
        (
            {"unanswered": True},
            {"role": "assistant", "answered": False, "status": "complete"},
            "chat_msg_org_unanswered",
        ),
        ({"feedback": "any"}, {"feedback__isnull": False}, "chat_msg_org_feedback"),
        ({"feedback": "up"}, {"feedback": 1}, "chat_msg_org_feedback"),
        ({"feedback": "down"}, {"feedback": -1}, "chat_msg_org_feedback"),
    ],
)
def test_unanswered_and_feedback_filters_read_their_partial_index_not_the_messages(
    many, other_tenant, criteria, flagged, index
):
    organization = many.organization
    # Another organization's flagged answer on a conversation of its own: never listed.
    other_assistant = Assistant.objects.create(organization=other_tenant.organization, name="Other")
    elsewhere = services.session_create(organization=other_tenant.organization, assistant=other_assistant)
    Message.objects.create(
        organization=other_tenant.organization,
        conversation=elsewhere,
        role=Message.Role.ASSISTANT,
        content="Not grounded.",
        answered=False,
        feedback=flagged.get("feedback", 1),
        seq=1,
    )
    queryset = selectors.conversation_list(organization=organization, **criteria)
    page_plan = _explain(queryset[:20])
    with CaptureQueriesContext(connection) as captured:
        count = queryset.count()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + captured.captured_queries[-1]["sql"])
        count_plan = "\n".join(row[0] for row in cursor.fetchall())
    for plan in (page_plan, count_plan):
        # An index scan ("using <index> on chat_message") or, as the planner likes for the
        # count, a bitmap scan of it ("Bitmap Index Scan on <index>"): the index either way.
        assert f"using {index} on chat_message" in plan or f"Bitmap Index Scan on {index} " in plan, plan
        assert "Seq Scan on chat_message" not in plan, plan
    # (Rare matches may be read from the partial index and sorted: a few rows, not the
    # organization's conversations; common ones walk the activity index in order.)
    # Same rows, order and counts as the filter on the flagged messages' conversation ids.
    marked = Message.objects.for_organization(organization).filter(**flagged).values("conversation")
    matching = set(
        Conversation.objects.for_organization(organization).filter(pk__in=marked).values_list("pk", flat=True)
    )
    reference = [(pk, messages) for pk, messages in _reference(organization) if pk in matching]
    assert 0 < len(reference) < 3000
    assert count == len(reference)
    assert [(row.pk, row.message_count) for row in queryset[:50]] == reference[:50]
    assert elsewhere.pk not in {row.pk for row in queryset}
