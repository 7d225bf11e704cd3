"""The support desk's visitor-facing API: asking for a person, the silent bot, CSAT.

SPEC "Support desk": bot → waiting → human → resolved; `POST …/handoff` (idempotent, one
event however often it is called), `POST …/csat` (once per resolution, 409 after).
"""

import threading

import pytest
from django.db import close_old_connections

from chat import prompts, services
from chat.models import Conversation, CsatRating, Message
from chat.selectors import chat_stats
from chat.services.conversations import message_store
from chat.tests.conftest import widget_client
from organizations.models import Event
from tests.conftest import assert_error_shape

pytestmark = pytest.mark.django_db


def _events(organization, type_=None):
    """The support desk's events (conversations and messages have their own, tested in webhooks)."""
    events = Event.objects.for_organization(organization).exclude(
        type__in=["conversation.created", "message.created"]
    )
    return events.filter(type=type_) if type_ else events


def _visitor_session(tenant, widget, visitor_id="v_owner"):
    client = widget_client(organization=tenant.organization, widget=widget, visitor_id=visitor_id)
    created = client.post("/api/v1/sessions", {}, format="json")
    assert created.status_code == 201, created.content
    return client, created.json()["data"]["id"]


def _stored(tenant, pk) -> Conversation:
    return Conversation.objects.for_organization(tenant.organization).get(pk=pk)


def test_visitor_asks_for_a_person_once_however_often(tenant, assistant, widget, offline):
    client, session_id = _visitor_session(tenant, widget)
    first = client.post(
        f"/api/v1/sessions/{session_id}/handoff", {"reason": "Billing question"}, format="json"
    )
    assert first.status_code == 200, first.content
    data = first.json()["data"]
    assert data["handoff_status"] == "waiting" and data["status"] == "waiting"
    assert data["handoff_trigger"] == "asked" and data["handoff_reason"] == "Billing question"
    assert data["handoff_requested_at"]
    again = client.post(f"/api/v1/sessions/{session_id}/handoff/", {}, format="json")
    assert again.status_code == 200 and again.json()["data"]["handoff_status"] == "waiting"
    assert again.json()["data"]["handoff_requested_at"] == data["handoff_requested_at"]
    events = list(_events(tenant.organization))
    assert [event.type for event in events] == ["handoff.requested"]
    assert events[0].data["conversation_id"] == session_id and events[0].data["trigger"] == "asked"
    assert "Billing" not in str(events[0].data)  # no visitor text in events


def test_handoff_with_an_api_key_on_sessions_and_conversations(tenant, assistant, offline):
    api = tenant.client()
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    response = api.post(f"/api/v1/sessions/{session.pk}/handoff", {}, format="json")
    assert response.status_code == 200 and response.json()["data"]["handoff_status"] == "waiting"
    created = api.post("/api/v1/conversations", {"assistant_id": str(assistant.pk)}, format="json")
    conversation_id = created.json()["data"]["id"]
    response = api.post(
        f"/api/v1/conversations/{conversation_id}/handoff", {"email": "ann@example.com"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["data"]["handoff_status"] == "waiting"
    assert response.json()["data"]["handoff_email"] == "ann@example.com"
    # An API key is the organization's backend, not the visitor: its own cause, in the
    # response, the stored row and the event; the overview counts these handoffs too.
    assert response.json()["data"]["handoff_trigger"] == "backend"
    assert _stored(tenant, session.pk).handoff_trigger == "backend"
    events = _events(tenant.organization, "handoff.requested")
    assert sorted(event.data["trigger"] for event in events) == ["backend", "backend"]
    assert chat_stats(organization=tenant.organization).handed_off == 2
    # A session id is not a conversation id (and the reverse): 404, as for any unknown id.
    assert_error_shape(api.post(f"/api/v1/conversations/{session.pk}/handoff", {}, format="json"), 404)


def test_another_visitors_session_and_another_tenant_are_404(
    tenant, other_tenant, assistant, widget, offline
):
    owner, session_id = _visitor_session(tenant, widget)
    stranger = widget_client(organization=tenant.organization, widget=widget, visitor_id="v_stranger")
    assert_error_shape(stranger.post(f"/api/v1/sessions/{session_id}/handoff", {}, format="json"), 404)
    assert_error_shape(
        other_tenant.client().post(f"/api/v1/sessions/{session_id}/handoff", {}, format="json"), 404
    )
    assert_error_shape(
        other_tenant.client().post(f"/api/v1/sessions/{session_id}/csat", {"score": 5}, format="json"), 404
    )
    assert _stored(tenant, session_id).handoff_status == "bot"
    assert not _events(tenant.organization).exists() and not _events(other_tenant.organization).exists()


def test_widget_tokens_cannot_reach_conversation_handoff(tenant, assistant, widget):
    conversation = services.conversation_create(organization=tenant.organization, assistant=assistant)
    client = widget_client(organization=tenant.organization, widget=widget)
    assert_error_shape(
        client.post(f"/api/v1/conversations/{conversation.pk}/handoff", {}, format="json"), 403
    )
    assert_error_shape(
        client.post(f"/api/v1/conversations/{conversation.pk}/csat", {"score": 3}, format="json"), 403
    )


@pytest.mark.parametrize(
    "email",
    ["ann@example.com\r\nBcc: everyone@example.com", "ann@example.com\nX-Spam: 1", "not an address", "a@b"],
)
def test_header_injection_and_bad_email_are_400(tenant, assistant, widget, offline, email):
    client, session_id = _visitor_session(tenant, widget)
    body = assert_error_shape(
        client.post(f"/api/v1/sessions/{session_id}/handoff", {"email": email}, format="json"), 400
    )
    assert "email" in body["data"]
    stored = _stored(tenant, session_id)
    assert stored.handoff_status == "bot" and stored.handoff_email == ""
    assert not _events(tenant.organization).exists()


def test_an_email_given_while_waiting_is_kept_without_a_second_event(tenant, assistant, widget, offline):
    client, session_id = _visitor_session(tenant, widget)
    client.post(f"/api/v1/sessions/{session_id}/handoff", {}, format="json")
    response = client.post(
        f"/api/v1/sessions/{session_id}/handoff", {"email": " sam@example.org "}, format="json"
    )
    assert response.json()["data"]["handoff_email"] == "sam@example.org"
    assert _events(tenant.organization).count() == 1


def test_while_waiting_and_human_a_message_is_stored_and_the_bot_is_silent(
    tenant, assistant, widget, faq, offline
):
    client, session_id = _visitor_session(tenant, widget)
    client.post(f"/api/v1/sessions/{session_id}/handoff", {}, format="json")
    url = f"/api/v1/sessions/{session_id}/messages"
    response = client.post(url, {"content": "How do I reset my password?"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["data"]["role"] == "user"
    assert response.json()["data"]["content"] == "How do I reset my password?"
    streamed = client.post(url, {"content": "Hello?"}, format="json", HTTP_ACCEPT="text/event-stream")
    frames = b"".join(streamed.streaming_content).decode()
    assert "event: done" in frames and '"role": "user"' in frames and "event: token" not in frames
    services.handoff_take_over(conversation=_stored(tenant, session_id), user=tenant.owner)
    response = client.post(url, {"content": "Still there?"}, format="json")
    assert response.status_code == 201 and response.json()["data"]["role"] == "user"
    messages = Message.objects.for_organization(tenant.organization)
    assert not messages.filter(role="assistant").exists()
    assert messages.filter(role="user").count() == 3


def test_a_message_asking_for_a_person_hands_over(tenant, assistant, widget, faq, offline):
    client, session_id = _visitor_session(tenant, widget)
    url = f"/api/v1/sessions/{session_id}/messages"
    answered = client.post(url, {"content": "Are you a human?"}, format="json")
    assert answered.json()["data"]["role"] == "assistant"  # a question about the bot, not a request
    response = client.post(url, {"content": "Can I talk to a real person please"}, format="json")
    assert response.status_code == 201 and response.json()["data"]["role"] == "user"
    stored = _stored(tenant, session_id)
    assert stored.handoff_status == "waiting" and stored.handoff_trigger == "asked"
    assert _events(tenant.organization, "handoff.requested").count() == 1


def test_the_assistants_language_is_understood(tenant, assistant, offline):
    assistant.language = "de"
    assistant.save()
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    stored = services.message_post(conversation=session, content="Ich möchte mit einem Menschen sprechen")
    assert stored.role == "user"
    session.refresh_from_db()
    assert session.handoff_status == "waiting"


def test_n_unanswered_turns_in_a_row_hand_over(tenant, assistant, faq, offline):
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    first = services.message_post(conversation=session, content="Do you sell garden gnomes?")
    assert first.role == "assistant" and not first.answered
    # A grounded answer in between breaks the streak (written directly: the offline answerer
    # would read the next question as a follow-up of an answered one).
    message_store(
        message=Message(
            organization=tenant.organization,
            conversation=session,
            role="assistant",
            content="Yes.",
            answered=True,
        )
    )
    after = services.message_post(conversation=session, content="What colour are your trucks?")
    assert not after.answered
    session.refresh_from_db()
    assert session.handoff_status == "bot"
    second = services.message_post(conversation=session, content="Do you repair violins?")
    assert second.role == "assistant" and not second.answered  # the visitor still gets the answer
    session.refresh_from_db()
    assert session.handoff_status == "waiting" and session.handoff_trigger == "unanswered"
    assert services.message_post(conversation=session, content="Hello?").role == "user"
    assert _events(tenant.organization).get().data["trigger"] == "unanswered"


def test_a_thank_you_between_questions_is_no_unanswered_question(tenant, assistant, faq, offline):
    """Found walking the widget: "Thanks, that's all!" got "You're welcome" stored as unanswered,
    so one more unanswered question handed the visitor to a person; and the overview counted it."""
    from chat.selectors import chat_stats

    session = services.session_create(organization=tenant.organization, assistant=assistant)
    welcome = services.message_post(conversation=session, content="Thanks, that's all!")
    assert "You're welcome" in welcome.content and welcome.metadata == {"small_talk": True}
    services.message_post(conversation=session, content="Do you sell garden gnomes?")
    session.refresh_from_db()
    assert session.handoff_status == "bot"  # one unanswered question, not two
    services.message_post(conversation=session, content="Hello!")
    services.message_post(conversation=session, content="Do you repair violins?")
    session.refresh_from_db()
    assert session.handoff_status == "waiting" and session.handoff_trigger == "unanswered"

    stats = chat_stats(organization=tenant.organization)
    assert stats.answers == 2 and stats.answered == 0  # the two questions, not the small talk
    asked = [entry["question"] for entry in stats.top_unanswered]
    assert "Do you sell garden gnomes?" in asked and "Thanks, that's all!" not in asked


def test_a_question_asked_while_a_person_is_awaited_is_no_gap_when_the_assistant_answers_it(
    tenant, assistant, faq, offline
):
    """Found on a walk: questions a visitor wrote while waiting for a person are listed as gaps
    in the knowledge (the assistant stays quiet), also when the assistant answered the very same
    question from the knowledge in another conversation."""
    from chat.selectors import chat_stats

    waiting = services.session_create(organization=tenant.organization, assistant=assistant)
    services.message_post(conversation=waiting, content="Do you sell garden gnomes?")
    services.message_post(conversation=waiting, content="Do you repair violins?")
    waiting.refresh_from_db()
    assert waiting.handoff_status == "waiting"
    quiet = services.message_post(conversation=waiting, content="What are your business hours?")
    assert quiet.role == "user"  # the assistant is quiet: a person was asked for
    services.message_post(conversation=waiting, content="Can I pay with a cheque?")
    asked = [entry["question"] for entry in chat_stats(organization=tenant.organization).top_unanswered]
    assert "What are your business hours?" in asked  # nothing has answered it yet

    other = services.session_create(organization=tenant.organization, assistant=assistant)
    answer = services.message_post(conversation=other, content="what are your business hours")
    assert answer.answered
    stats = chat_stats(organization=tenant.organization)
    asked = {entry["question"]: entry for entry in stats.top_unanswered}
    assert "What are your business hours?" not in asked
    assert asked["Can I pay with a cheque?"]["handoff"]  # still a gap: nothing answered it
    assert "Do you repair violins?" in asked and "Do you sell garden gnomes?" in asked


@pytest.mark.parametrize("reply", ["yes please", "Yes!", "sure", "Sí, por favor", "ja bitte", "oui merci"])
def test_yes_to_the_offer_of_a_person_hands_over(tenant, assistant, faq, offline, reply):
    """Found walking the widget: every answer that finds nothing ends "Would you like me to
    connect you with a human agent?"; the shopper's "yes please" got the same refusal again
    and counted as a second unanswered question."""
    assistant.handoff_after_unanswered = 0  # the streak rule off: only the "yes" can hand over
    assistant.save()
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    refusal = services.message_post(conversation=session, content="Do you sell garden gnomes?")
    assert not refusal.answered and "human agent" in refusal.content
    stored = services.message_post(conversation=session, content=reply)
    assert stored.role == "user"  # the bot is silent: a person was asked for
    session.refresh_from_db()
    assert session.handoff_status == "waiting" and session.handoff_trigger == "asked"
    assert _events(tenant.organization, "handoff.requested").count() == 1
    # The overview lists the question as a gap in the knowledge, not the "yes".
    asked = [entry["question"] for entry in chat_stats(organization=tenant.organization).top_unanswered]
    assert asked == ["Do you sell garden gnomes?"]


def test_yes_without_an_offer_and_ok_thanks_after_one_are_no_request(tenant, assistant, faq, offline):
    assistant.handoff_after_unanswered = 0
    assistant.save()
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    # After an answer from the knowledge base (or small talk), "yes" is just a message.
    answered = services.message_post(conversation=session, content="What are your business hours?")
    assert answered.answered
    assert services.message_post(conversation=session, content="yes please").role == "assistant"
    services.message_post(conversation=session, content="Hello!")
    assert services.message_post(conversation=session, content="yes").role == "assistant"
    # After the offer, an acknowledgement or a new question is not a yes.
    services.message_post(conversation=session, content="Do you sell garden gnomes?")
    assert services.message_post(conversation=session, content="ok thanks").role == "assistant"
    services.message_post(conversation=session, content="Do you repair violins?")
    follow = services.message_post(conversation=session, content="yes, and do you rent boats too?")
    assert follow.role == "assistant"
    session.refresh_from_db()
    assert session.handoff_status == "bot"


@pytest.mark.parametrize(
    "text", ["thanks, that helps", "OK thanks, that helped", "thank you, that was helpful"]
)
def test_thanks_that_helps_is_small_talk(tenant, assistant, faq, offline, text):
    """Found walking the widget: "thanks, that helps" got "I don't have information about that"."""
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    welcome = services.message_post(conversation=session, content=text)
    assert "You're welcome" in welcome.content and welcome.metadata == {"small_talk": True}


@pytest.mark.parametrize("text", ["Thanks!", "thanks, that helps", "great, thank you so much"])
def test_thanks_after_an_answer_is_not_answered_again(tenant, assistant, faq, offline, text):
    """Found walking the widget: after an answer, "thanks, that helps" was searched as a
    follow-up of the question before and got the same answer again."""
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    answer = services.message_post(conversation=session, content="What are your business hours?")
    assert answer.answered
    welcome = services.message_post(conversation=session, content=text)
    assert "You're welcome" in welcome.content and welcome.metadata == {"small_talk": True}
    assert welcome.content != answer.content and not welcome.sources


@pytest.mark.parametrize("text", ["ok", "OK!", "okay, got it", "alright cool", "perfecto, entendido"])
def test_an_acknowledgement_after_an_answer_is_small_talk(tenant, assistant, faq, offline, text):
    """Found walking the demo shop: "ok" after the list of payment methods was searched as a
    follow-up of that question and got the list's lead-in, "We accept:", alone."""
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    answer = services.message_post(conversation=session, content="What are your business hours?")
    assert answer.answered
    reply = services.message_post(conversation=session, content=text)
    assert reply.metadata == {"small_talk": True} and not reply.sources
    assert reply.content in prompts.SMALL_TALK["ack"].values()
    # After an answer that found nothing, "ok" is still no yes to the offer of a person.
    services.message_post(conversation=session, content="Do you repair violins?")
    assert services.message_post(conversation=session, content="ok").role == "assistant"
    session.refresh_from_db()
    assert session.handoff_status == "bot"


def test_unanswered_rule_is_an_assistant_setting(tenant, assistant, faq, offline):
    api = tenant.client()
    response = api.patch(f"/api/v1/assistants/{assistant.pk}", {"handoff_after_unanswered": 0}, format="json")
    assert response.status_code == 200 and response.json()["data"]["handoff_after_unanswered"] == 0
    assert_error_shape(
        api.patch(f"/api/v1/assistants/{assistant.pk}", {"handoff_after_unanswered": -1}, format="json"), 400
    )
    assistant.refresh_from_db()
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    for question in ("Do you sell gnomes?", "Do you repair violins?", "Do you rent boats?"):
        assert services.message_post(conversation=session, content=question).role == "assistant"
    session.refresh_from_db()
    assert session.handoff_status == "bot"


def test_a_streak_before_a_handoff_does_not_count_again(tenant, assistant, faq, offline):
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    services.message_post(conversation=session, content="Do you sell gnomes?")
    services.message_post(conversation=session, content="Do you repair violins?")
    services.handoff_hand_back(conversation=session)
    services.message_post(conversation=session, content="Do you rent boats?")
    session.refresh_from_db()
    assert session.handoff_status == "bot"  # one new unanswered turn, not three


def test_thumbs_down_offers_a_person_when_the_assistant_says_so(tenant, assistant, widget, faq, offline):
    client, session_id = _visitor_session(tenant, widget)
    answer = client.post(
        f"/api/v1/sessions/{session_id}/messages", {"content": "How do I reset my password?"}, format="json"
    ).json()["data"]
    feedback_url = f"/api/v1/sessions/{session_id}/messages/{answer['id']}/feedback"
    assert client.post(feedback_url, {"rating": "down"}, format="json").status_code == 200
    assert _stored(tenant, session_id).handoff_status == "bot"  # off by default
    assistant.handoff_on_thumbs_down = True
    assistant.save()
    client.post(feedback_url, {"rating": "up"}, format="json")
    assert _stored(tenant, session_id).handoff_status == "bot"
    client.post(feedback_url, {"rating": "down"}, format="json")
    stored = _stored(tenant, session_id)
    assert stored.handoff_status == "waiting" and stored.handoff_trigger == "thumbs_down"


def test_handoff_on_a_resolved_conversation_reopens_it(tenant, assistant, widget, offline):
    client, session_id = _visitor_session(tenant, widget)
    client.post(f"/api/v1/sessions/{session_id}/handoff", {}, format="json")
    services.conversation_resolve(conversation=_stored(tenant, session_id), user=tenant.owner)
    response = client.post(f"/api/v1/sessions/{session_id}/handoff", {}, format="json")
    assert response.json()["data"]["handoff_status"] == "waiting"
    assert _events(tenant.organization, "handoff.requested").count() == 2
    assert _events(tenant.organization, "conversation.resolved").count() == 1


def test_a_message_on_a_resolved_conversation_reopens_it_as_waiting(tenant, assistant, faq, offline):
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    services.conversation_resolve(conversation=session)
    services.conversation_resolve(conversation=session)  # twice: one resolution, one event
    assert _events(tenant.organization, "conversation.resolved").count() == 1
    stored = services.message_post(conversation=session, content="How do I reset my password?")
    assert stored.role == "user"
    session.refresh_from_db()
    assert session.handoff_status == "waiting" and session.handoff_trigger == "reopened"


def test_csat_once_per_resolution(tenant, assistant, widget, offline):
    client, session_id = _visitor_session(tenant, widget)
    url = f"/api/v1/sessions/{session_id}/csat"
    assert_error_shape(client.post(url, {"score": 4}, format="json"), 409)  # not resolved yet
    services.handoff_take_over(conversation=_stored(tenant, session_id), user=tenant.owner)
    services.conversation_resolve(conversation=_stored(tenant, session_id), user=tenant.owner)
    response = client.post(url, {"score": 4, "comment": "Quick and kind"}, format="json")
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["score"] == 4 and data["comment"] == "Quick and kind" and data["resolution"] == 1
    assert_error_shape(client.post(url, {"score": 5}, format="json"), 409)
    rating = CsatRating.objects.for_organization(tenant.organization).get()
    assert rating.score == 4 and rating.resolved_by == tenant.owner
    event = _events(tenant.organization, "csat.created").get()
    assert event.data["score"] == 4 and "Quick" not in str(event.data)
    # Reopened and resolved again: a new resolution can be rated.
    client.post(f"/api/v1/sessions/{session_id}/handoff", {}, format="json")
    services.conversation_resolve(conversation=_stored(tenant, session_id))
    assert client.post(url, {"score": 2}, format="json").json()["data"]["resolution"] == 2


@pytest.mark.parametrize("score", [0, 6, -1, 4.5, "four", True, None, "", [4]])
def test_csat_score_outside_1_to_5_is_400(tenant, assistant, widget, offline, score):
    client, session_id = _visitor_session(tenant, widget)
    services.conversation_resolve(conversation=_stored(tenant, session_id))
    body = assert_error_shape(
        client.post(f"/api/v1/sessions/{session_id}/csat", {"score": score}, format="json"), 400
    )
    assert "score" in body["data"]
    assert not CsatRating.objects.for_organization(tenant.organization).exists()


def test_csat_comment_too_long_and_missing_score_are_400(tenant, assistant, widget, offline):
    client, session_id = _visitor_session(tenant, widget)
    services.conversation_resolve(conversation=_stored(tenant, session_id))
    url = f"/api/v1/sessions/{session_id}/csat"
    assert (
        "comment"
        in assert_error_shape(client.post(url, {"score": 3, "comment": "x" * 2001}, format="json"), 400)[
            "data"
        ]
    )
    assert (
        "score" in assert_error_shape(client.post(url, {"comment": "no score"}, format="json"), 400)["data"]
    )


def test_csat_by_another_visitor_is_404_and_by_api_key_works(tenant, assistant, widget, offline):
    _, session_id = _visitor_session(tenant, widget)
    services.conversation_resolve(conversation=_stored(tenant, session_id))
    stranger = widget_client(organization=tenant.organization, widget=widget, visitor_id="v_stranger")
    assert_error_shape(stranger.post(f"/api/v1/sessions/{session_id}/csat", {"score": 1}, format="json"), 404)
    assert not CsatRating.objects.for_organization(tenant.organization).exists()
    conversation = services.conversation_create(organization=tenant.organization, assistant=assistant)
    services.conversation_resolve(conversation=conversation)
    response = tenant.client().post(
        f"/api/v1/conversations/{conversation.pk}/csat", {"score": "5"}, format="json"
    )
    assert response.status_code == 201 and response.json()["data"]["score"] == 5


def test_event_emit_refuses_unknown_types(tenant):
    from organizations.services import event_emit

    with pytest.raises(ValueError):
        event_emit(organization=tenant.organization, type="handoff.requestd", data={})
    event = event_emit(organization=tenant.organization, type="csat.created", data={"score": 5})
    assert Event.objects.for_organization(tenant.organization).get() == event


@pytest.mark.django_db(transaction=True)
def test_concurrent_handoffs_make_one_change_and_one_event(tenant, assistant):
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    results, start = [], threading.Barrier(4)

    def ask():
        try:
            start.wait()
            copy = (
                Conversation.objects.for_organization(tenant.organization)
                .select_related("organization")
                .get(pk=session.pk)
            )
            results.append(services.handoff_request(conversation=copy)[1])
        finally:
            close_old_connections()

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(results) == [False, False, False, True]
    assert _events(tenant.organization, "handoff.requested").count() == 1
