"""The litellm provider against a real OpenAI-compatible server on loopback."""

import time

import pytest

from chat.llm import ChatMessage, Completion, CompletionRequest, Delta, ProviderError, ProviderTimeout
from chat.llm.litellm_provider import LiteLLMProvider
from chat.llm.types import ProviderOverloaded


def _request(server, **overrides) -> CompletionRequest:
    values = {
        "model": "openai/loopback-model",
        "messages": (
            ChatMessage(role="system", content="You are helpful."),
            ChatMessage(role="user", content="Hello there"),
        ),
        "question": "Hello there",
        "timeout": 5.0,
        "max_retries": 2,
        "api_base": server.api_base,
        "api_key": "sk-loopback",
    }
    values.update(overrides)
    return CompletionRequest(**values)


def test_completion_returns_text_and_usage(llm_server):
    llm_server.then(content="Our office opens at 9am.")
    completion = LiteLLMProvider().complete(_request(llm_server))
    assert completion.content == "Our office opens at 9am."
    assert completion.prompt_tokens > 0 and completion.completion_tokens > 0
    sent = llm_server.last_request
    assert sent["model"] == "loopback-model"
    assert sent["messages"][0] == {"role": "system", "content": "You are helpful."}
    assert sent["max_tokens"] == 800
    assert not sent.get("stream")


def test_stream_yields_deltas_then_the_whole_answer_with_usage(llm_server):
    llm_server.then(content="Streaming works in several pieces.")
    events = list(LiteLLMProvider().stream(_request(llm_server)))
    deltas = [event.text for event in events if isinstance(event, Delta)]
    assert len(deltas) >= 3
    final = events[-1]
    assert isinstance(final, Completion)
    assert final.content == "".join(deltas) == "Streaming works in several pieces."
    assert final.completion_tokens > 0
    assert llm_server.last_request["stream"] is True


def test_server_errors_are_retried_then_succeed(llm_server):
    llm_server.then(kind="status", code=500).then(kind="status", code=500).then(content="Third time lucky.")
    completion = LiteLLMProvider().complete(_request(llm_server))
    assert completion.content == "Third time lucky."
    assert len(llm_server.requests) == 3


def test_retries_are_bounded(llm_server):
    for _ in range(5):
        llm_server.then(kind="status", code=500)
    with pytest.raises(ProviderError) as caught:
        LiteLLMProvider().complete(_request(llm_server, max_retries=1))
    assert not isinstance(caught.value, ProviderTimeout)
    assert len(llm_server.requests) == 2


def test_rate_limit_honours_retry_after(llm_server):
    llm_server.then(kind="status", code=429, retry_after=1).then(content="After waiting.")
    started = time.monotonic()
    completion = LiteLLMProvider().complete(_request(llm_server))
    assert completion.content == "After waiting."
    assert time.monotonic() - started >= 0.95
    assert len(llm_server.requests) == 2


def test_persistent_rate_limit_is_reported_as_overloaded(llm_server):
    for _ in range(3):
        llm_server.then(kind="status", code=429, retry_after=0)
    with pytest.raises(ProviderOverloaded):
        LiteLLMProvider().complete(_request(llm_server, max_retries=2))
    assert len(llm_server.requests) == 3


def test_a_hanging_provider_is_cut_at_the_timeout(llm_server):
    llm_server.then(kind="hang", seconds=30)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        LiteLLMProvider().complete(_request(llm_server, timeout=1.5))
    assert time.monotonic() - started < 5


def test_a_dropped_stream_is_an_error_not_a_short_answer(llm_server):
    llm_server.then(kind="drop", content="This answer will never be finished by the server.", after=2)
    provider = LiteLLMProvider()
    received = []
    with pytest.raises(ProviderError):
        for event in provider.stream(_request(llm_server)):
            received.append(event)
    assert all(isinstance(event, Delta) for event in received)


def test_client_side_close_stops_reading_the_upstream_stream(llm_server):
    llm_server.then(content="word " * 400, delay=0.01)
    stream = LiteLLMProvider().stream(_request(llm_server))
    next(stream)
    next(stream)
    stream.close()
    sent_at_close = llm_server.chunks_sent
    time.sleep(1.0)
    assert llm_server.chunks_sent < 250  # the server stopped well before the end (~250 chunks)
    assert llm_server.chunks_sent - sent_at_close < 200
