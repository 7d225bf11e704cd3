"""The one module that imports litellm (lazily: importing it costs seconds of CPU).

Retries are ours, not litellm's or the OpenAI SDK's, so they are bounded in number and
in total time: up to `max_retries` further attempts on 429/5xx/connection errors, with
exponential backoff and jitter, honouring `Retry-After`, all inside one overall deadline
of `timeout` seconds. A stream is retried only before its first token.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Iterator

from chat.llm.types import (
    ChatMessage,
    Completion,
    CompletionRequest,
    Delta,
    ProviderError,
    ProviderOverloaded,
    ProviderTimeout,
    ToolCall,
)

logger = logging.getLogger(__name__)

_import_lock = threading.Lock()
_litellm = None

# The longest Retry-After we are willing to sleep for inside one request.
MAX_RETRY_AFTER = 10.0


def _lib():
    global _litellm
    if _litellm is None:
        with _import_lock:
            if _litellm is None:
                os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
                import litellm

                litellm.telemetry = False
                litellm.suppress_debug_info = True
                litellm.drop_params = True
                _litellm = litellm
    return _litellm


def _retry_after(exc: Exception) -> float | None:
    headers = {}
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "headers", None) is not None:
        headers = response.headers
    headers = getattr(exc, "litellm_response_headers", None) or getattr(exc, "headers", None) or headers
    try:
        value = headers.get("retry-after") or headers.get("Retry-After") if headers else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _classify(exc: Exception) -> tuple[type[ProviderError], bool]:
    """(error class to raise, whether another attempt may help)."""
    errors = _lib().exceptions
    if isinstance(exc, errors.Timeout):
        return ProviderTimeout, False
    if isinstance(exc, errors.RateLimitError):
        return ProviderOverloaded, True
    if isinstance(
        exc, (errors.InternalServerError, errors.ServiceUnavailableError, errors.APIConnectionError)
    ):
        return ProviderError, True
    if isinstance(exc, errors.BadGatewayError):
        return ProviderError, True
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and (status >= 500 or status == 429):
        return (ProviderOverloaded if status == 429 else ProviderError), True
    return ProviderError, False


def _message_dict(message: ChatMessage) -> dict:
    """One message in the OpenAI format litellm takes (tool calls and their results included)."""
    body: dict = {"role": message.role, "content": message.content}
    if message.tool_calls:
        body["content"] = message.content or None
        body["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in message.tool_calls
        ]
    if message.role == "tool":
        body["tool_call_id"] = message.tool_call_id
    return body


def _tool_calls(message) -> tuple[ToolCall, ...]:
    calls = []
    for number, call in enumerate(getattr(message, "tool_calls", None) or []):
        function = getattr(call, "function", None)
        name = getattr(function, "name", None) or ""
        if name:
            calls.append(
                ToolCall(
                    id=getattr(call, "id", None) or f"call_{number}",
                    name=name,
                    arguments=getattr(function, "arguments", None) or "{}",
                )
            )
    return tuple(calls)


class LiteLLMProvider:
    name = "litellm"
    metered = True

    def supports_tools(self, model: str) -> bool:
        """Whether litellm knows `model` to support function calling (unknown models: no)."""
        try:
            return bool(_lib().supports_function_calling(model=model))
        except Exception:
            return False

    def _kwargs(self, request: CompletionRequest, *, timeout: float, stream: bool, client=None) -> dict:
        kwargs = {
            "model": request.model,
            "messages": [_message_dict(message) for message in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "timeout": timeout,
            "stream": stream,
            "num_retries": 0,
            "max_retries": 0,
        }
        if request.tools:
            kwargs["tools"] = list(request.tools)
            kwargs["tool_choice"] = request.tool_choice
        if stream:
            kwargs["stream_options"] = {"include_usage": True}
        if request.api_base:
            kwargs["api_base"] = request.api_base
        if request.api_key:
            kwargs["api_key"] = request.api_key
        if client is not None:
            kwargs["client"] = client
        return kwargs

    def _checked_client(self, request: CompletionRequest):
        """(httpx client, what litellm takes as `client`) for an organization's own base URL, or
        (None, None). litellm's own clients follow redirects and resolve names again when they
        connect, so a public base URL could lead them to 169.254.169.254 or a private service;
        this client checks and pins every connection (core.fetcher) and follows no redirect."""
        if not (request.api_base_checked and request.api_base):
            return None, None
        from django.conf import settings

        from core import fetcher

        prefix = request.model.split("/", 1)[0]
        if prefix not in ("openai", "ollama_chat"):  # no checked path: do not call it at all
            raise ProviderError(f"{prefix} cannot be reached at an organization's own base URL.")
        http = fetcher.guarded_httpx_client(allowlist=settings.LLM_BASE_URL_ALLOWLIST)
        if prefix == "openai":
            import openai

            return http, openai.OpenAI(
                api_key=request.api_key or "no-key",
                base_url=request.api_base,
                http_client=http,
                max_retries=0,
                timeout=request.timeout,
            )
        from litellm.llms.custom_httpx.http_handler import HTTPHandler

        return http, HTTPHandler(client=http)

    def _call(self, request: CompletionRequest, *, stream: bool, client=None):
        """Calls litellm with bounded retries; returns the response or a stream wrapper."""
        litellm = _lib()
        deadline = time.monotonic() + request.timeout
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0.05:
                raise ProviderTimeout("The language model did not answer in time.")
            try:
                return litellm.completion(
                    **self._kwargs(request, timeout=remaining, stream=stream, client=client)
                )
            except Exception as exc:  # litellm maps every provider error to its own classes
                error_class, retryable = _classify(exc)
                retry_after = _retry_after(exc)
                logger.warning(
                    "LLM call failed (attempt %s, %s, status %s)",
                    attempt + 1,
                    exc.__class__.__name__,
                    getattr(exc, "status_code", "-"),
                )
                if not retryable or attempt >= request.max_retries:
                    raise error_class(_message(error_class), retry_after=retry_after) from None
                delay = min(8.0, 0.5 * 2**attempt) * (0.5 + random.random() / 2)
                if retry_after is not None:
                    delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
                if time.monotonic() + delay >= deadline:
                    raise error_class(_message(error_class), retry_after=retry_after) from None
                time.sleep(delay)
                attempt += 1

    def complete(self, request: CompletionRequest) -> Completion:
        http, client = self._checked_client(request)
        try:
            response = self._call(request, stream=False, client=client)
        finally:
            if http is not None:
                http.close()
        choice = response.choices[0]
        content = (choice.message.content or "").strip()
        usage = getattr(response, "usage", None)
        return Completion(
            content=content,
            model=getattr(response, "model", None) or request.model,
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            cost=self._cost(response, request),
            finish_reason=getattr(choice, "finish_reason", None) or "stop",
            tool_calls=_tool_calls(choice.message),
        )

    def stream(self, request: CompletionRequest) -> Iterator[Delta | Completion]:
        http, client = self._checked_client(request)
        try:
            yield from self._stream(request, client=client)
        finally:
            if http is not None:
                http.close()

    def _stream(self, request: CompletionRequest, *, client=None) -> Iterator[Delta | Completion]:
        litellm = _lib()
        wrapper = self._call(request, stream=True, client=client)
        chunks = []
        parts: list[str] = []
        calls: dict[int, dict] = {}  # tool calls arrive in pieces, keyed by their index
        finished = False
        started = time.monotonic()
        try:
            for chunk in wrapper:
                chunks.append(chunk)
                if time.monotonic() - started > request.timeout:
                    raise ProviderTimeout("The language model stream took too long.")
                choices = getattr(chunk, "choices", None) or []
                text = getattr(choices[0].delta, "content", None) if choices else None
                for piece in (getattr(choices[0].delta, "tool_calls", None) or []) if choices else []:
                    _tool_call_piece(calls, piece)
                if text:
                    parts.append(text)
                    yield Delta(text=text)
            # litellm ends a stream cut by the provider as if it were complete (it makes
            # up a final "stop" chunk); only a finish reason from upstream proves it was.
            if getattr(wrapper, "received_finish_reason", "stop") is None:
                raise ProviderError("The language model stream was interrupted.")
            finished = True
        except ProviderError:
            raise
        except GeneratorExit:
            raise
        except Exception as exc:
            error_class, _retryable = _classify(exc)
            logger.warning("LLM stream broke after %s chunks (%s)", len(chunks), exc.__class__.__name__)
            raise error_class("The language model stream was interrupted.") from None
        finally:
            if not finished:
                _close(wrapper)
        content = "".join(parts).strip()
        prompt_tokens = completion_tokens = 0
        model = request.model
        cost = 0.0
        try:
            built = litellm.stream_chunk_builder(
                chunks, messages=[_message_dict(message) for message in request.messages]
            )
        except Exception:
            built = None
        if built is not None:
            usage = getattr(built, "usage", None)
            prompt_tokens = getattr(usage, "prompt_tokens", 0) or 0
            completion_tokens = getattr(usage, "completion_tokens", 0) or 0
            model = getattr(built, "model", None) or model
            cost = self._cost(built, request)
        yield Completion(
            content=content,
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=cost,
            tool_calls=tuple(
                ToolCall(
                    id=call["id"] or f"call_{index}", name=call["name"], arguments=call["arguments"] or "{}"
                )
                for index, call in sorted(calls.items())
                if call["name"]
            ),
        )

    def _cost(self, response, request: CompletionRequest) -> float:
        try:
            return float(_lib().completion_cost(completion_response=response, model=request.model) or 0.0)
        except Exception:
            return 0.0  # a model without a price (local, self-hosted) costs nothing we know of


def _tool_call_piece(calls: dict[int, dict], piece) -> None:
    """Adds one streamed fragment of a tool call (id and name first, arguments in pieces)."""
    index = getattr(piece, "index", None)
    index = index if isinstance(index, int) else len(calls)
    call = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
    if getattr(piece, "id", None):
        call["id"] = piece.id
    function = getattr(piece, "function", None)
    if function is not None:
        if getattr(function, "name", None):
            call["name"] = function.name
        if getattr(function, "arguments", None):
            call["arguments"] += function.arguments


def _close(wrapper) -> None:
    """Stops reading an upstream stream (client went away or the stream failed)."""
    for target in (getattr(wrapper, "completion_stream", None), wrapper):
        close = getattr(target, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # noqa: S112 - best effort, the connection is being abandoned
                continue
            return


def _message(error_class: type[ProviderError]) -> str:
    if error_class is ProviderTimeout:
        return "The language model did not answer in time."
    if error_class is ProviderOverloaded:
        return "The language model provider is rate limiting requests; try again shortly."
    return "The language model provider failed."
