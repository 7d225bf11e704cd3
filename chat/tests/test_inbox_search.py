"""The inbox's search: message text by its words from the full-text index (`chat.search`),
order numbers and emails whole or by a part, the last word as a prefix, the conversation's
own identifiers as substrings, never another organization's conversations; and at a realistic
size Postgres reads the index, not the messages."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from assistants.models import Assistant
from chat import selectors, services
from chat.models import Message
from chat.search import message_query, tsquery_text
from testkit.inbox import conversations_insert

pytestmark = pytest.mark.django_db


def _conversation(tenant, assistant, *texts, **fields):
    conversation = services.session_create(organization=tenant.organization, assistant=assistant, **fields)
    for seq, text in enumerate(texts, start=1):
        Message.objects.create(
            organization=tenant.organization,
            conversation=conversation,
            role=Message.Role.USER if seq % 2 else Message.Role.ASSISTANT,
            content=text,
            seq=seq,
        )
    return conversation


@pytest.fixture
def inbox(tenant, other_tenant, assistant):
    conversations = {
        "order": _conversation(
            tenant,
            assistant,
            "Hi, where is my order A-1042? I paid with jo.smith@example.com",
            "Your parcel ships within TWO days.",
        ),
        "refund": _conversation(
            tenant, assistant, "Can I get a refund for order #77-B?", "Refunds take a week."
        ),
        "german": _conversation(tenant, assistant, "Wie lange dauert der Versand nach Österreich?"),
        "customer": services.conversation_create(
            organization=tenant.organization, assistant=assistant, customer_id="cust-4711"
        ),
    }
    other_assistant = Assistant.objects.create(organization=other_tenant.organization, name="Other")
    conversations["elsewhere"] = _conversation(
        other_tenant, other_assistant, "Where is my order A-1042? jo.smith@example.com, refund please"
    )
    return conversations


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("ships", {"order"}),
        ("SHIPS within", {"order"}),  # case, and every word, in any order
        ("within ships", {"order"}),
        ("days parcel", {"order"}),
        ("shi", {"order"}),  # the last word as typed so far
        ("refund", {"refund"}),  # "Refunds" is another word ("refund" is its prefix)
        ("refunds week", {"refund"}),
        ("ship within", set()),  # only the last word is a prefix
        ('"within two"', {"order"}),  # a phrase: those words in that order
        ('"two within"', set()),
        ('"within tw', {"order"}),  # an unclosed quote is still being typed
        ("A-1042", {"order"}),  # an order number: whole, by its number, as typed
        ("a-1042", {"order"}),
        ("1042", {"order"}),
        ("A-10", {"order"}),
        ("#77-B", {"refund"}),
        ("77", {"refund"}),
        ("A-1043", set()),
        ("jo.smith@example.com", {"order"}),  # an email: whole, by its domain, as typed
        ("example.com", {"order"}),
        ("jo.smith@exa", {"order"}),
        ("smith", {"order"}),
        ("jo.smith@example.org", set()),
        ("österreich", {"german"}),  # any language with spaces between words
        ("ÖSTERREICH versand", {"german"}),
        ("ust-47", {"customer"}),  # the conversation's own identifiers: any part
        ("submarine", set()),
    ],
)
def test_search_finds_words_prefixes_order_numbers_and_emails(tenant, inbox, search, expected):
    found = selectors.conversation_list(organization=tenant.organization, search=search)
    names = {name for name, conversation in inbox.items() if conversation in set(found)}
    assert names == expected
    assert inbox["elsewhere"] not in set(found)  # the other organization's words never match


@pytest.mark.parametrize("search", ["'", "\\", "a & b | !c", "x:* <-> y", "(((", "—", "👍", '"', "&&", "a'b"])
def test_search_of_tsquery_syntax_or_of_no_word_is_no_error(tenant, inbox, owner_client, search):
    list(selectors.conversation_list(organization=tenant.organization, search=search))
    response = owner_client.get(reverse("inbox"), {"q": search})
    assert response.status_code == 200


def test_the_query_quotes_every_word_and_prefixes_only_the_last():
    assert message_query("") is None and message_query(" !?- ") is None
    assert tsquery_text("A-1042 jo@x.com") == "('A' <-> '1042') & ('jo' <-> 'x' <-> 'com':*)"
    assert tsquery_text('"two days" ok') == "('two' <-> 'days') & ('ok':*)"
    assert tsquery_text('ships "two days"') == "('ships') & ('two' <-> 'days')"
    assert tsquery_text("it's a\\b") == "('it' <-> 's') & ('a' <-> 'b':*)"


def test_the_inbox_page_lists_what_the_search_finds(tenant, inbox, owner_client):
    page = owner_client.get(reverse("inbox"), {"q": "A-1042"}).content.decode()
    assert str(inbox["order"].pk) in page
    assert str(inbox["refund"].pk) not in page and str(inbox["elsewhere"].pk) not in page


@pytest.fixture
def many(tenant, assistant):
    """10,000 conversations (about 38,000 messages), then ANALYZE: the planner's real choice. (At
    3,000, a seq scan of the 11,000 messages may cost less to the planner than the index's
    entries for 'customer', 'example' and 'com', which every first question has.)"""
    with connection.cursor() as cursor:
        conversations_insert(
            cursor, organization=tenant.organization, assistant=assistant, operator=tenant.owner, count=10_000
        )
    return tenant


def _explain(sql: str, params=None) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize(
    ("search", "conversations"),
    [("A-2042", 1), ("customer-1234@example.com", 1), ("A-204", 10)],
)
def test_search_reads_the_full_text_index_not_the_messages(many, other_tenant, search, conversations):
    other_assistant = Assistant.objects.create(organization=other_tenant.organization, name="Other")
    elsewhere = _conversation(other_tenant, other_assistant, f"Hi, this is {search}.")
    queryset = selectors.conversation_list(organization=many.organization, search=search)
    page_plan = _explain(*queryset[:20].query.sql_with_params())
    with CaptureQueriesContext(connection) as captured:
        count = queryset.count()
    count_plan = _explain(captured.captured_queries[-1]["sql"])
    for plan in (page_plan, count_plan):
        assert "Bitmap Index Scan on chat_msg_search" in plan, plan
        assert "Seq Scan on chat_message" not in plan, plan
    # Conversation i's first question names order A-i and customer-i@example.com (the seed):
    # "A-204" (typed so far) is A-204 and A-2041 … A-2049 (every tenth has no message).
    assert count == conversations
    rows = list(queryset)
    assert len(rows) == conversations and elsewhere not in rows
    for row in rows:
        first = Message.objects.for_organization(many.organization).get(conversation=row, seq=1)
        assert search.split("@")[0] in first.content
