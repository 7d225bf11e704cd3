"""Dashboard: overview and inbox (Django test client, offline answerer)."""

import re

import pytest
from django.urls import reverse

from assistants.models import Assistant, UserContext
from chat import services
from chat.models import Message
from knowledge import services as knowledge_services

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

XSS = '<script>alert("x")</script>'


@pytest.fixture
def assistant(tenant):
    return Assistant.objects.create(organization=tenant.organization, name="Helper")


@pytest.fixture
def conversation(tenant, assistant):
    knowledge_services.qa_create(
        organization=tenant.organization,
        question="What are your opening hours?",
        answer="Monday to Friday, 9am to 5pm.",
    )
    context = UserContext.objects.create(
        organization=tenant.organization, user_reference="cust-42", traits={"plan": "gold", "name": XSS}
    )
    conversation = services.conversation_create(
        organization=tenant.organization,
        assistant=assistant,
        customer_id="cust-42",
        user_context=context,
        metadata={"page": "/pricing", "email": '"><img src=x onerror=alert(1)>'},
    )
    services.message_post(conversation=conversation, content="When are you open?")
    services.message_post(conversation=conversation, content=f"Do you sell spaceships? {XSS}")
    return conversation


def test_anonymous_and_foreign(client, foreign_client, conversation):
    assert client.get(reverse("inbox")).status_code == 302
    url = reverse("inbox-conversation", args=[conversation.pk])
    assert client.get(url).status_code == 302
    assert foreign_client.get(url).status_code == 404
    assert foreign_client.get(reverse("inbox-transcript", args=[conversation.pk])).status_code == 404
    for action in ["take-over", "hand-back", "resolve"]:
        assert foreign_client.post(reverse("inbox-action", args=[conversation.pk, action])).status_code == 404
    assert (
        foreign_client.post(reverse("inbox-reply", args=[conversation.pk]), {"content": "hi"}).status_code
        == 404
    )
    conversation.refresh_from_db()
    assert conversation.handoff_status == "bot"
    assert not Message.objects.for_organization(conversation.organization).filter(role="operator").exists()
    assert b"cust-42" not in foreign_client.get(reverse("inbox")).content
    assert foreign_client.post(reverse("inbox-typing", args=[conversation.pk])).status_code == 404
    assert client.post(reverse("inbox-typing", args=[conversation.pk])).status_code == 302


@pytest.mark.django_db(transaction=True)
def test_operator_typing_reaches_the_visitors_live_stream(owner_client, conversation, settings):
    from chat import live

    settings.LIVE_STREAM_SECONDS = 5
    events = live.conversation_events(conversation=conversation)
    assert next(events).kind == "status"
    stored = Message.objects.for_organization(conversation.organization).filter(conversation=conversation)
    assert [next(events).kind for _ in range(stored.count())] == ["message"] * stored.count()  # so far
    page = owner_client.get(reverse("inbox-conversation", args=[conversation.pk]))
    assert reverse("inbox-typing", args=[conversation.pk]).encode() in page.content
    assert owner_client.get(reverse("inbox-typing", args=[conversation.pk])).status_code == 405
    assert owner_client.post(reverse("inbox-typing", args=[conversation.pk])).status_code == 204
    assert next(events).kind == "typing"
    events.close()


def test_inbox_lists_and_shows_transcript_with_sources_metadata_and_traits(owner_client, conversation):
    page = owner_client.get(reverse("inbox"))
    assert page.status_code == 200 and b"&lt;script&gt;alert" in page.content  # traits.name, escaped
    detail = owner_client.get(reverse("inbox-conversation", args=[conversation.pk]))
    content = detail.content
    assert b"When are you open?" in content and b"9am to 5pm" in content
    assert b'data-testid="sources"' in content and b"What are your opening hours?" in content
    assert b"No answer in knowledge" in content  # the spaceship question
    assert b"/pricing" in content and b"gold" in content


def test_inbox_visitor_details_leave_out_what_the_page_did_not_send(owner_client, tenant, assistant):
    """Found on a walk: a direct visit (no referrer; the widget sends null) showed "referrer
    None" under the visitor's details."""
    session = services.session_create(
        organization=tenant.organization,
        assistant=assistant,
        visitor_id="v-direct",
        metadata={"url": "http://127.0.0.1:8812/", "referrer": None, "title": ""},
    )
    services.message_post(conversation=session, content="When are you open?")
    detail = owner_client.get(reverse("inbox-conversation", args=[session.pk]))
    assert detail.context["metadata"] == {"url": "http://127.0.0.1:8812/"}
    details = detail.content.decode().split('data-testid="visitor-metadata"', 1)[1].split("</dl>", 1)[0]
    assert "<dt>url</dt><dd>http://127.0.0.1:8812/</dd>" in details
    assert "referrer" not in details and "None" not in details and "<dt>title</dt>" not in details


def test_visitor_supplied_text_is_inert(owner_client, conversation):
    content = owner_client.get(reverse("inbox-conversation", args=[conversation.pk])).content
    assert XSS.encode() not in content
    assert b"<img src=x onerror=alert(1)>" not in content
    assert b"&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in content
    assert b"&lt;img src=x onerror=alert(1)&gt;" in content


def test_filters(owner_client, tenant, assistant, conversation):
    other = services.session_create(organization=tenant.organization, assistant=assistant, visitor_id="v-1")
    services.message_post(conversation=other, content="When are you open?")

    def listed(**params):
        return {str(c.pk) for c in owner_client.get(reverse("inbox"), params).context["page_obj"]}

    assert listed() == {str(conversation.pk), str(other.pk)}
    assert listed(unanswered="on") == {str(conversation.pk)}
    assert listed(kind="session") == {str(other.pk)}
    assert listed(assistant=str(assistant.pk)) == {str(conversation.pk), str(other.pk)}
    services.handoff_take_over(conversation=other, user=tenant.owner)
    assert listed(status="human") == {str(other.pk)}
    answer = (
        Message.objects.for_organization(tenant.organization)
        .filter(conversation=conversation, role="assistant")
        .first()
    )
    services.message_feedback_set(message=answer, rating="down")
    assert listed(feedback="down") == {str(conversation.pk)}
    assert listed(feedback="up") == set()
    assert listed(date_from="2000-01-01", date_to="2000-01-02") == set()
    assert b"No conversations match" in owner_client.get(reverse("inbox"), {"q": "nothing-like-this"}).content


def test_take_over_reply_hand_back_resolve(owner_client, tenant, conversation):
    url = reverse("inbox-conversation", args=[conversation.pk])
    owner_client.post(reverse("inbox-action", args=[conversation.pk, "take-over"]))
    conversation.refresh_from_db()
    assert conversation.handoff_status == "human" and conversation.assigned_to == tenant.owner
    # While taken over, the bot stays silent.
    services.message_post(conversation=conversation, content="Hello, anyone?")
    assert (
        not Message.objects.for_organization(tenant.organization)
        .filter(conversation=conversation, in_reply_to__content="Hello, anyone?")
        .exists()
    )
    last = Message.objects.for_organization(tenant.organization).filter(conversation=conversation).last()
    response = owner_client.post(
        reverse("inbox-reply", args=[conversation.pk]),
        {"content": "Hi, I'm Sam from support."},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 204 and response["HX-Trigger"] == "transcript-refresh"
    poll = owner_client.get(reverse("inbox-transcript", args=[conversation.pk]), {"after": str(last.pk)})
    assert b"Hi, I&#x27;m Sam from support." in poll.content and b"hx-swap-oob" in poll.content
    reply = Message.objects.for_organization(tenant.organization).filter(role="operator").get()
    assert reply.author == tenant.owner
    assert f"after={reply.pk}".encode() in poll.content
    owner_client.post(reverse("inbox-action", args=[conversation.pk, "hand-back"]))
    conversation.refresh_from_db()
    assert conversation.handoff_status == "bot"
    owner_client.post(reverse("inbox-action", args=[conversation.pk, "resolve"]))
    conversation.refresh_from_db()
    assert conversation.handoff_status == "resolved"
    assert owner_client.get(url).status_code == 200
    assert owner_client.post(reverse("inbox-action", args=[conversation.pk, "explode"])).status_code == 404


def test_empty_reply_is_refused(owner_client, tenant, conversation):
    response = owner_client.post(
        reverse("inbox-reply", args=[conversation.pk]), {"content": "  "}, HTTP_HX_REQUEST="true"
    )
    assert response["X-Form-Error"] == "1"
    assert not Message.objects.for_organization(tenant.organization).filter(role="operator").exists()


def test_agents_work_the_inbox(agent_client, tenant, conversation):
    assert agent_client.get(reverse("inbox-conversation", args=[conversation.pk])).status_code == 200
    agent_client.post(reverse("inbox-reply", args=[conversation.pk]), {"content": "Agent here."})
    assert Message.objects.for_organization(tenant.organization).filter(role="operator").count() == 1


def test_inbox_empty_state_and_pagination(owner_client, tenant, assistant):
    assert b"No conversations yet" in owner_client.get(reverse("inbox")).content
    for number in range(21):
        services.session_create(
            organization=tenant.organization, assistant=assistant, visitor_id=f"v{number}"
        )
    assert owner_client.get(reverse("inbox")).context["page_obj"].paginator.num_pages == 2


def test_overview_charts_and_top_unanswered(owner_client, conversation):
    page = owner_client.get(reverse("overview"))
    assert page.status_code == 200
    stats = page.context["stats"]
    assert stats.conversations == 1 and stats.answered == 1 and stats.unanswered == 1
    assert b"<svg" in page.content and b"<rect" in page.content
    assert b'data-testid="top-unanswered"' in page.content and b"spaceships" in page.content
    assert XSS.encode() not in page.content
    assert b"Turn into Q&amp;A" in page.content
    # The one-click link opens the Q&A editor with the question filled in.
    link = reverse("knowledge") + "?question=Do%20you%20sell%20spaceships%3F"
    assert b"Do you sell spaceships?</textarea>" in owner_client.get(link).content
    week = owner_client.get(reverse("overview"), {"days": 7})
    assert len(week.context["stats"].days) == 7


def test_overview_tells_the_truth_playground_offline_tokens_and_questions_turned_into_qa(
    owner_client, tenant, conversation, assistant
):
    """Playground tests are not visitors (a filter, off by default); the offline answerer's
    answers use no LLM tokens; a question turned into a Q&A pair leaves "without an answer"
    until it is asked again and still goes unanswered."""
    playground = services.session_create(
        organization=tenant.organization,
        assistant=assistant,
        visitor_id="playground:owner@example.com",
        metadata={"source": "playground"},
    )
    services.message_post(conversation=playground, content="Do you rent rockets?")
    model_written = conversation.messages.filter(role="assistant").order_by("created_at").first()
    model_written.model, model_written.prompt_tokens, model_written.completion_tokens = "gpt-4o-mini", 120, 30
    model_written.save(update_fields=["model", "prompt_tokens", "completion_tokens"])

    stats = owner_client.get(reverse("overview")).context["stats"]
    assert stats.conversations == 1 and stats.answers == 2
    assert (stats.prompt_tokens, stats.completion_tokens) == (120, 30)  # offline answers: none
    assert [item["question"].split(" <")[0] for item in stats.top_unanswered] == ["Do you sell spaceships?"]
    with_playground = owner_client.get(reverse("overview"), {"playground": "on"}).context["stats"]
    assert with_playground.conversations == 2 and with_playground.answers == 3
    assert "Do you rent rockets?" in [item["question"] for item in with_playground.top_unanswered]
    page = owner_client.get(reverse("overview"))
    assert b"Include playground" in page.content and b"offline-usage-note" in page.content

    # "Turn into Q&A", reworded by the operator: the visitor's question leaves the list.
    asked = conversation.messages.filter(role="user", content__startswith="Do you sell").get().content
    response = owner_client.post(
        reverse("knowledge-qa-create"),
        {
            "question": "Which spaceships do you sell?",
            "answer": "None, sorry.",
            "made_from": asked,
            "assistant": "",
        },
    )
    assert response.status_code == 302
    assert owner_client.get(reverse("overview")).context["stats"].top_unanswered == []
    # Asked again afterwards and still without an answer (the pair did not cover it after
    # all): it is back, counted once.
    services.message_post(conversation=conversation, content=asked)
    latest = conversation.messages.filter(role="assistant").latest("created_at")
    latest.answered = False
    latest.save(update_fields=["answered"])
    later = owner_client.get(reverse("overview")).context["stats"].top_unanswered
    assert [item["count"] for item in later] == [1]


def test_overview_onboarding_for_a_new_organization(owner_client):
    page = owner_client.get(reverse("overview"))
    assert b"Get started" in page.content and b"No data in this period yet" in page.content
    # Found on a walk: a brand-new organization was told every question found an answer.
    assert b"No questions asked in this period yet." in page.content
    assert b"Every question in this period found an answer" not in page.content


def test_overview_says_every_question_was_answered_only_when_there_were_questions(
    owner_client, tenant, assistant
):
    knowledge_services.qa_create(
        organization=tenant.organization, question="What are your opening hours?", answer="9am to 5pm."
    )
    conversation = services.conversation_create(organization=tenant.organization, assistant=assistant)
    services.message_post(conversation=conversation, content="What are your opening hours?")
    assert conversation.messages.get(role="assistant").answered
    page = owner_client.get(reverse("overview"))
    assert b"Every question in this period found an answer in your knowledge base." in page.content
    assert b"No questions asked in this period yet." not in page.content


def test_csv_export_is_scoped_filtered_and_formula_safe(
    owner_client, foreign_client, tenant, assistant, conversation
):
    import csv
    import io

    session = services.session_create(organization=tenant.organization, assistant=assistant, visitor_id="v-9")
    services.message_post(conversation=session, content='=HYPERLINK("http://evil.example","click")')
    services.message_post(conversation=session, content="@SUM(1+1)")
    response = owner_client.get(reverse("inbox-export"))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    contents = [row[7] for row in rows[1:]]
    assert '\'=HYPERLINK("http://evil.example","click")' in contents and "'@SUM(1+1)" in contents
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert "When are you open?" in contents
    only_sessions = owner_client.get(reverse("inbox-export"), {"kind": "session"}).content.decode()
    assert "When are you open?" not in only_sessions and "@SUM" in only_sessions
    foreign = foreign_client.get(reverse("inbox-export")).content.decode()
    assert foreign.count("\n") == 1  # header only


def test_csv_export_selects_what_the_inbox_list_shows(owner_client, tenant, assistant, conversation):
    """The export link carries the list's query string, "Assigned to me" included."""
    session = services.session_create(organization=tenant.organization, assistant=assistant, visitor_id="v-9")
    services.message_post(conversation=session, content="Where is my parcel?")
    services.conversation_assign(conversation=session, assignee=tenant.owner)
    exported = owner_client.get(reverse("inbox-export"), {"mine": "on"}).content.decode()
    assert "Where is my parcel?" in exported and "When are you open?" not in exported
    everything = owner_client.get(reverse("inbox-export")).content.decode()
    assert "Where is my parcel?" in everything and "When are you open?" in everything


def test_invalid_filters_are_shown_and_never_widen_the_list_or_the_export(owner_client, conversation):
    """A malformed date or a search over 200 characters is reported beside the filters; the
    list and the CSV export select nothing rather than everything."""
    for params in ({"q": "x" * 201}, {"date_from": "yesterday"}, {"q": "open", "date_to": "2026-13-45"}):
        page = owner_client.get(reverse("inbox"), params)
        assert page.status_code == 200
        assert list(page.context["page_obj"]) == []
        body = page.content.decode()
        assert 'data-testid="filter-errors"' in body and "Filters not applied" in body
        export = owner_client.get(reverse("inbox-export"), params)
        assert export.status_code == 400 and export["Content-Type"].startswith("text/plain")
        assert "The inbox filters are not valid" in export.content.decode()
        assert "When are you open?" not in export.content.decode()
    long = owner_client.get(reverse("inbox"), {"q": "x" * 201}).content.decode()
    assert "Search: Ensure this value has at most 200 characters" in long
    fine = owner_client.get(reverse("inbox"), {"q": "open " * 40})
    assert [c.pk for c in fine.context["page_obj"]] == [conversation.pk]


def test_session_cookie_flags_and_no_cors_on_dashboard(client, tenant):
    response = client.post(
        reverse("login"), {"username": tenant.owner.email, "password": "correct-horse-battery"}
    )
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    page = client.get(reverse("inbox"), HTTP_ORIGIN="https://evil.example")
    assert page.status_code == 200
    assert "Access-Control-Allow-Origin" not in page and "Access-Control-Allow-Credentials" not in page
    assert page["X-Frame-Options"] == "DENY"


def test_inbox_badge_counts_conversations_waiting_for_a_person(owner_client, tenant, conversation):
    badge = re.compile(rb"<span class=\"nav__badge\" data-queue-badge[^>]*?( hidden)?>(\d+)</span>")
    assert badge.search(owner_client.get(reverse("overview")).content).groups() == (b" hidden", b"0")
    services.handoff_request(conversation=conversation)
    assert badge.search(owner_client.get(reverse("overview")).content).groups() == (None, b"1")
    services.handoff_take_over(conversation=conversation, user=tenant.owner)  # someone has it now
    assert badge.search(owner_client.get(reverse("overview")).content).groups() == (b" hidden", b"0")


def test_questions_that_led_to_a_handoff_feed_turn_into_qa(
    owner_client, foreign_client, tenant, conversation
):
    # The fixture's "spaceships" question went unanswered in a conversation nobody handed off.
    handed = services.conversation_create(organization=tenant.organization, assistant=conversation.assistant)
    services.message_post(conversation=handed, content="Do you ship to Mars?")  # unanswered, then…
    services.message_post(conversation=handed, content="I want to talk to a person")  # …a handoff
    services.message_post(conversation=handed, content="Can I pay with bitcoin?")  # the person's to answer
    services.message_post(conversation=handed, content="Thanks!")
    page = owner_client.get(reverse("overview"))
    top = {item["question"]: item for item in page.context["stats"].top_unanswered}
    assert top["Do you ship to Mars?"]["handoff"] and top["Can I pay with bitcoin?"]["handoff"]
    assert not top[f"Do you sell spaceships? {XSS}"]["handoff"]
    assert "I want to talk to a person" not in top and "Thanks!" not in top  # not knowledge gaps
    html = page.content.decode()
    bitcoin = html[html.index("Can I pay with bitcoin?") :].split("</li>")[0]
    assert (
        'data-testid="led-to-handoff"' in bitcoin and "?question=Can%20I%20pay%20with%20bitcoin%3F" in bitcoin
    )
    # Asked after the handoff, it did not lead to one (a new-user walk read "Led to a handoff"
    # beside questions typed while a person was awaited): the badge says where it went.
    assert ">Handed to a person</span>" in bitcoin and "Led to a handoff" not in html
    spaceships = html[html.index("Do you sell spaceships?") :].split("</li>")[0]
    assert "led-to-handoff" not in spaceships
    assert b"bitcoin" not in foreign_client.get(reverse("overview")).content


def test_test_retrieval_says_what_the_assistant_would_do(owner_client, foreign_client, tenant):
    knowledge_services.qa_create(
        organization=tenant.organization,
        question="What are your opening hours?",
        answer="Monday to Friday, 9am to 5pm.",
    )
    url = reverse("knowledge-test")
    answered = owner_client.get(url, {"query": "When are you open?"}).content.decode()
    assert "The assistant would answer" in answered and "Relevant</span>" in answered
    assert "9am to 5pm" in answered and "score" not in answered  # no raw rank-fusion figures
    unknown = owner_client.get(url, {"query": "Do you sell spaceships?"}).content.decode()
    assert "would say it does not know and offer a person" in unknown
    assert "The assistant would answer" not in unknown and "Relevant</span>" not in unknown
    assert "Not relevant enough" in unknown  # what retrieval found is still shown, judged
    assert "Type a question" in owner_client.get(url, {"query": ""}).content.decode()
    theirs = foreign_client.get(url, {"query": "When are you open?"}).content.decode()
    assert "9am to 5pm" not in theirs and "does not know" in theirs
