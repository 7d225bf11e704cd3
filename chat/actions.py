"""Assistant actions at answer time: which are offered to the model, and running one call.

An assistant's active actions are offered as functions ("tools", litellm function calling)
when the provider supports them (`LLM_TOOL_CALLING`: "auto" asks litellm, "on"/"off"
decide) — never by the offline answerer — and, for those marked
`requires_verified_visitor`, only when the one asking is verified (an API-key caller or the
dashboard; a widget visitor whose identity the organization's server proved).

A call the model asks for:
1. is refused if it names no offered action;
2. has its arguments (JSON text) parsed and validated against the action's JSON Schema:
   invalid → the model is told why, the endpoint is not called;
3. has its URL filled (placeholders URL-encoded); the arguments the URL does not use go in
   the query string (GET, DELETE) or as the JSON body (POST, PUT, PATCH);
4. goes through `core.fetcher` with the action's headers (decrypted for this request only,
   sent to the URL's own origin only): public addresses only unless SCRAPE_ALLOWLIST,
   `ACTIONS_TIMEOUT` for the whole call, `ACTIONS_MAX_BYTES`, `ACTIONS_MAX_REDIRECTS`;
5. its result — the status and the body, at most `ACTIONS_RESULT_MAX_CHARS`, with any header
   value blanked out — is what the model reads next; a 4xx/5xx, a timeout or a refusal tells
   the model the lookup failed and to say so.

Each call is recorded (`Message.tool_calls`): name, arguments, status, duration_ms, error —
never a header, never the response body. Logs name the action and the status only.

At most once per turn: an action may have side effects (a POST to the organization's
endpoint), and a turn can fail after it ran (the model's next round times out) and be retried
(the same Idempotency-Key answers the stored question again). So every round of calls is
written on the question (`Message.tool_rounds`) as it happens — the model's calls before any
runs, each call marked started before its request and its outcome after — and a retry of the
turn starts from those rounds: the model reads the calls made and their results again; a call
an earlier attempt started (same call id, action and arguments) is never run again (its
recorded result is reused), and one that was started but whose outcome was never written (the
process died during it) is not repeated either (the model is told its result is unknown). The
rounds are cleared when the answer is stored.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from django.conf import settings
from jsonschema import Draft202012Validator

from assistants import actions as action_rules
from assistants import selectors as assistant_selectors
from assistants.models import Action
from chat.llm import ChatMessage, ToolCall
from chat.models import Message
from core import fetcher

logger = logging.getLogger(__name__)
# Who calls your API (the fetcher's default names knowledge ingestion); your headers may override it.
USER_AGENT = "SupportAI-Actions/1.0"

OK = "ok"
INVALID_ARGUMENTS = "invalid_arguments"
FAILED = "failed"  # the endpoint answered 4xx/5xx, or the connection failed
TIMEOUT = "timeout"
NOT_ALLOWED = "not_allowed"  # the URL fetcher refused the address
REFUSED = "refused"  # not an offered action, or over the per-answer limit

BODY_METHODS = {"POST", "PUT", "PATCH"}
FAILED_HINT = "Tell the customer that the lookup failed and offer to connect them with a human agent."


def tools_enabled(provider, model: str) -> bool:
    """Whether this turn's provider may be offered tools (`LLM_TOOL_CALLING`)."""
    mode = (settings.LLM_TOOL_CALLING or "auto").strip().lower()
    supports = getattr(provider, "supports_tools", None)
    if supports is None or mode in {"off", "false", "0", "no"}:
        return False
    if mode in {"on", "true", "1", "yes"}:
        return True
    return bool(supports(model))


def tool_spec(action: Action) -> dict:
    return {
        "type": "function",
        "function": {"name": action.name, "description": action.description, "parameters": action.parameters},
    }


@dataclass
class Toolbox:
    """The actions one answer may call, and what was called so far (in this attempt and in the
    earlier attempts of the same turn: `rounds`, as stored on `question`)."""

    actions: dict[str, Action]
    records: list[dict] = field(default_factory=list)
    question: Message | None = None
    rounds: list[dict] = field(default_factory=list)
    earlier: int = 0  # how many of `rounds` earlier attempts ran
    caller: dict[str, str] = field(default_factory=dict)  # `caller_headers`, sent on every call

    @property
    def specs(self) -> tuple[dict, ...]:
        return tuple(tool_spec(action) for action in self.actions.values())

    @property
    def calls_made(self) -> int:
        return sum(1 for record in self.records if record["status"] != REFUSED)

    def replayed(self) -> tuple[list[str], list[ChatMessage]]:
        """(each earlier round's text, the conversation the model had with the actions so
        far): what a retried turn sends the model before its next round."""
        texts, messages = [], []
        for stored in self.rounds:
            calls = tuple(ToolCall(**call) for call in stored["calls"])
            if stored["content"].strip():
                texts.append(stored["content"].strip())
            messages.append(ChatMessage(role="assistant", content=stored["content"], tool_calls=calls))
            for call in calls:
                messages.append(
                    ChatMessage(role="tool", content=self._recorded(call).result, tool_call_id=call.id)
                )
        return texts, messages

    def _recorded(self, call: ToolCall) -> Outcome:
        """The outcome an earlier attempt wrote for this call id: its result; "lost" if it was
        started and never finished; "not called" if its round was interrupted before it."""
        started = False
        for stored in self.rounds[: self.earlier]:
            outcome = stored["outcomes"].get(call.id)
            if outcome is not None and "result" in outcome:
                return Outcome(record=outcome["record"], result=outcome["result"])
            started = started or outcome is not None
        if not started:
            return Outcome(record={}, result=NOT_CALLED_RESULT)
        arguments = _arguments_shown(call.arguments)
        return Outcome(record=_record(call, arguments, FAILED, time.perf_counter(), LOST), result=LOST_RESULT)

    def _ran_before(self, call: ToolCall) -> bool:
        """Whether an earlier attempt of this turn started this very call: the same id, action
        and arguments (some OpenAI-compatible servers number ids per response, `call_0`…, so
        an id alone could name another call)."""
        asked = {"id": call.id, "name": call.name, "arguments": call.arguments}
        return any(
            asked in stored["calls"] and call.id in stored["outcomes"]
            for stored in self.rounds[: self.earlier]
        )

    def _save(self) -> None:
        if self.question is None:
            return
        self.question.tool_rounds = self.rounds
        Message.objects.for_organization(self.question.organization_id).filter(pk=self.question.pk).update(
            tool_rounds=self.rounds
        )


# A call marked started whose outcome was never written (the process died during it).
LOST = "the result of this call was lost; it was not repeated"
LOST_RESULT = json.dumps({"error": f"Unknown: {LOST}.", "instruction": FAILED_HINT})
# A call of an interrupted round that never started: the model may ask for it again.
NOT_CALLED_RESULT = json.dumps({"error": "Not called: the answer was interrupted before this call."})


def caller_headers(conversation) -> dict[str, str]:
    """Who is asking, set by SupportAI on every call (never by the model or the action's
    stored headers): the conversation, and for a widget visitor whose identity the
    organization's server proved, that customer's user id. The model chooses the arguments
    and a visitor can talk it into any order number or email address; the endpoint can
    answer only about `X-SupportAI-Verified-User`, which no visitor can choose."""
    headers = {"X-SupportAI-Conversation": str(conversation.pk)}
    if conversation.visitor_verified and conversation.customer_id:
        # Percent-encoded UTF-8 (a header carries neither control characters nor most of
        # Unicode); an id of letters, digits and the usual punctuation is sent unchanged.
        headers["X-SupportAI-Verified-User"] = quote(conversation.customer_id, safe="!#$&'()*+,-./:;=?@_~")
    return headers


def toolbox_for(
    *, conversation, provider, model: str, verified: bool, question: Message | None = None
) -> Toolbox | None:
    """The actions offered on this turn, or None when none are (or tools are not supported).

    With `question`, the rounds an earlier attempt of this turn ran are loaded from it (and
    each new round and call is written on it)."""
    if not tools_enabled(provider, model):
        return None
    offered = assistant_selectors.actions_offerable(assistant=conversation.assistant, verified=verified)
    if not offered:
        return None
    rounds = list(question.tool_rounds or []) if question is not None else []
    toolbox = Toolbox(
        actions={action.name: action for action in offered},
        question=question,
        rounds=rounds,
        earlier=len(rounds),
        caller=caller_headers(conversation),
    )
    for stored in rounds:
        for call in stored["calls"]:
            if call["id"] in stored["outcomes"]:
                toolbox.records.append(toolbox._recorded(ToolCall(**call)).record)
    return toolbox


def round_begin(*, toolbox: Toolbox, content: str, calls: tuple[ToolCall, ...]) -> None:
    """The model asked for `calls` (after saying `content`): written before any of them runs."""
    toolbox.rounds.append(
        {
            "content": content,
            "calls": [{"id": call.id, "name": call.name, "arguments": call.arguments} for call in calls],
            "outcomes": {},
        }
    )
    toolbox._save()


def call_once(*, toolbox: Toolbox, call: ToolCall, limit: int) -> Outcome:
    """One call of the current round (after `round_begin`), within `limit` calls per answer;
    its outcome is written on the question. A call an earlier attempt of the turn started
    gets that attempt's outcome back instead of running again."""
    if toolbox._ran_before(call):
        return toolbox._recorded(call)
    current = toolbox.rounds[-1]["outcomes"]
    if toolbox.calls_made >= limit:
        outcome = refused(call, f"at most {limit} action calls per answer")
    else:
        current[call.id] = {"started": True}
        toolbox._save()
        outcome = call_run(toolbox=toolbox, call=call)
    current[call.id] = {"record": outcome.record, "result": outcome.result}
    toolbox.records.append(outcome.record)
    toolbox._save()
    return outcome


@dataclass(frozen=True)
class Outcome:
    record: dict  # stored on the answer
    result: str  # what the model reads


def _record(call: ToolCall, arguments, status: str, started: float, error: str = "") -> dict:
    return {
        "name": call.name[:64],
        "arguments": arguments,
        "status": status,
        "duration_ms": int((time.perf_counter() - started) * 1000),
        "error": error,
    }


def _failed(call, arguments, status, started, error: str) -> Outcome:
    logger.info("action %s: %s", call.name[:64], status)
    return Outcome(
        record=_record(call, arguments, status, started, error),
        result=json.dumps({"error": f"The lookup failed: {error}", "instruction": FAILED_HINT}),
    )


def _schema_errors(schema: dict, arguments: dict) -> list[str]:
    errors = sorted(Draft202012Validator(schema).iter_errors(arguments), key=lambda error: list(error.path))
    described = []
    for error in errors[:5]:
        where = "/".join(str(part) for part in error.path)
        described.append(f"{where}: {error.message}" if where else error.message)
    return described


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


def _body_text(response: fetcher.FetchResponse) -> str:
    """The response body as the model reads it: JSON compacted, at most ACTIONS_RESULT_MAX_CHARS."""
    raw = response.content
    if b"\x00" in raw[:1024]:
        return f"(a binary {response.content_type or 'response'} of {len(raw)} bytes)"
    text = response.text()
    try:
        text = json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        pass
    limit = settings.ACTIONS_RESULT_MAX_CHARS
    if len(text) > limit:
        text = text[:limit] + " … (truncated)"
    return text


def _body_value(text: str):
    """A whole JSON body goes back as JSON (not a string of JSON), anything else as text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def refused(call: ToolCall, reason: str) -> Outcome:
    started = time.perf_counter()
    logger.info("action %s: %s", call.name[:64], REFUSED)
    return Outcome(
        record=_record(call, _arguments_shown(call.arguments), REFUSED, started, reason),
        result=json.dumps({"error": f"Not called: {reason}"}),
    )


def _arguments_shown(raw: str):
    try:
        return json.loads(raw or "{}")
    except ValueError:
        return (raw or "")[:2000]


def call_run(*, toolbox: Toolbox, call: ToolCall) -> Outcome:
    """Runs one call the model asked for (every rule of the module docstring)."""
    started = time.perf_counter()
    action = toolbox.actions.get(call.name)
    if action is None:
        return refused(call, f"there is no action named {call.name[:64]!r}")
    try:
        arguments = json.loads(call.arguments or "{}")
    except ValueError:
        return _failed(
            call,
            (call.arguments or "")[:2000],
            INVALID_ARGUMENTS,
            started,
            "the arguments are not valid JSON",
        )
    if not isinstance(arguments, dict):
        return _failed(call, arguments, INVALID_ARGUMENTS, started, "the arguments must be a JSON object")
    problems = _schema_errors(action.parameters or {}, arguments)
    if problems:
        error = "invalid arguments: " + "; ".join(problems)
        logger.info("action %s: %s", action.name, INVALID_ARGUMENTS)
        return Outcome(
            record=_record(call, arguments, INVALID_ARGUMENTS, started, error),
            result=json.dumps(
                {"error": error, "instruction": "Fix the arguments and call again, or ask the customer."}
            ),
        )
    try:
        url, rest = action_rules.url_fill(action.url_template, arguments)
    except action_rules.ActionInvalid as invalid:
        return _failed(call, arguments, INVALID_ARGUMENTS, started, f"invalid arguments: {invalid.message}")
    body = None
    if action.method in BODY_METHODS:
        body = json.dumps(rest, ensure_ascii=False).encode()
    elif rest:
        query = urlencode(
            {key: value if isinstance(value, str) else json.dumps(value) for key, value in rest.items()}
        )
        url += ("&" if "?" in url else "?") + query
    headers = action_rules.headers_decrypt(action.headers)
    secrets = list(headers.values())
    sent = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if body is not None:
        sent["Content-Type"] = "application/json"
    sent.update(headers)
    sent.update(toolbox.caller)
    try:
        response = fetcher.fetch(
            url,
            accept=(),
            method=action.method,
            headers=sent,
            body=body,
            max_bytes=settings.ACTIONS_MAX_BYTES,
            total_timeout=settings.ACTIONS_TIMEOUT,
            max_redirects=settings.ACTIONS_MAX_REDIRECTS,
            raise_for_status=False,
        )
    except fetcher.UrlNotAllowed as refusal:
        return _failed(call, arguments, NOT_ALLOWED, started, _redact(str(refusal), secrets))
    except fetcher.FetchTimeout:
        return _failed(call, arguments, TIMEOUT, started, f"no answer within {settings.ACTIONS_TIMEOUT:g} s")
    except fetcher.FetchFailed as failure:
        return _failed(call, arguments, FAILED, started, _redact(str(failure), secrets))
    if response.status >= 400 or response.status < 200:
        excerpt = _redact(_body_text(response), secrets)[:300]
        outcome = _failed(call, arguments, FAILED, started, f"the service answered HTTP {response.status}")
        result = json.loads(outcome.result) | {"status": response.status, "body": excerpt}
        return Outcome(record=outcome.record, result=json.dumps(result, ensure_ascii=False))
    logger.info("action %s: %s (HTTP %s)", action.name, OK, response.status)
    return Outcome(
        record=_record(call, arguments, OK, started),
        result=json.dumps(
            {"status": response.status, "body": _body_value(_redact(_body_text(response), secrets))},
            ensure_ascii=False,
        ),
    )
