"""Answering: store the question, ground it, ask the provider, store the answer.

The user's message is committed before any provider call, so a provider failure loses
nothing: the client gets 502/503/504 in the error shape and can simply retry (with the
same `Idempotency-Key`, the retry answers the stored question instead of storing it twice).

Metered providers (litellm; not the offline answerer) are gated by the organization's
daily token budget (`chat.llm.metering`): once today's usage (UTC) reaches it, the question
is stored, no call is made and the client gets 429 with `Retry-After` = seconds to 00:00
UTC. Every metered call's usage is added to the day's meter as soon as the provider returns.

`message_post` and `message_post_stream` are one turn (`_turn_open`, `_answer_settled`,
`_answering`) that ends in the model's answer, whole or streamed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager, nullcontext
from dataclasses import dataclass, replace

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from assistants.llm_models import model_resolve, model_route
from chat import actions, escalation, grounding, prompts
from chat.llm import (
    ChatMessage,
    Completion,
    CompletionRequest,
    Delta,
    ProviderError,
    ProviderOverloaded,
    ProviderTimeout,
    metering,
    provider_get,
)
from chat.models import Conversation, Message
from chat.services import handoff
from chat.services.conversations import conversation_user_context, message_store, message_store_reading
from core import timing
from core.concurrency import Cap, CapReached, slots_held
from core.errors import (
    BudgetExhausted,
    Conflict,
    ServiceUnavailable,
    TooManyConcurrent,
    UpstreamError,
    UpstreamTimeout,
    ValidationFailed,
)
from knowledge import analysis

logger = logging.getLogger(__name__)

_CITATION = re.compile(r"\[(\d{1,2})\]")


def company_rules_from_payload(payload: dict | None) -> prompts.CompanyRules:
    """The widget chat API's `context` ({rules: {companyName, companyDescription, policies, tone}, scrapedData})."""
    payload = payload if isinstance(payload, dict) else {}
    rules = payload.get("rules") if isinstance(payload.get("rules"), dict) else {}
    policies = []
    for policy in rules.get("policies") or []:
        if isinstance(policy, dict) and (policy.get("content") or policy.get("title")):
            policies.append(
                (str(policy.get("title") or "Policy")[:200], str(policy.get("content") or "")[:4000])
            )
    scraped = payload.get("scrapedData")
    if isinstance(scraped, (dict, list)):
        scraped = json.dumps(scraped, ensure_ascii=False)
    return prompts.CompanyRules(
        company_name=str(rules.get("companyName") or "")[:200],
        company_description=str(rules.get("companyDescription") or "")[:2000],
        policies=tuple(policies[:50]),
        tone=str(rules.get("tone") or "")[:50],
        scraped_data=str(scraped or "")[:20000],
    )


def _rules_stored(conversation: Conversation) -> prompts.CompanyRules:
    stored = (conversation.metadata or {}).get("company_context")
    return company_rules_from_payload(stored) if stored else prompts.CompanyRules()


# --- the question ----------------------------------------------------------------------


def _fingerprint(content: str, metadata: dict | None) -> str:
    body = json.dumps({"content": content, "metadata": metadata or {}}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _question_store(
    *, conversation: Conversation, content: str, metadata: dict | None, idempotency_key: str
) -> tuple[Message, bool]:
    """(the user's message, whether it was stored by an earlier request with the same key)."""
    content = (content or "").strip()
    if not content:
        raise ValidationFailed("The message is empty.", details={"content": ["This field may not be blank."]})
    if len(content) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise ValidationFailed(
            f"The message is longer than {settings.CHAT_MAX_MESSAGE_CHARS} characters.",
            details={
                "content": [
                    f"Ensure this field has no more than {settings.CHAT_MAX_MESSAGE_CHARS} characters."
                ]
            },
        )
    fingerprint = _fingerprint(content, metadata) if idempotency_key else ""
    fields = {
        "organization_id": conversation.organization_id,
        "conversation": conversation,
        "role": Message.Role.USER,
        "content": content,
        "metadata": metadata or {},
        "idempotency_key": idempotency_key,
        "request_fingerprint": fingerprint,
    }
    if idempotency_key:
        # Stored first, looked up only when the key is taken (a retry, or a concurrent request
        # with the same key won the insert): the widget sends a key with every question, and
        # a new one is then one autocommitted statement, not a lookup and a transaction
        # around the insert (a savepoint inside a caller's transaction, to carry on after a
        # refused insert).
        try:
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                message = _question_insert(Message(**fields))
            return message, False
        except IntegrityError:
            existing = _question_by_key(conversation=conversation, key=idempotency_key)
            if existing is None:  # refused for another reason (the conversation is gone)
                raise
        if existing.request_fingerprint != fingerprint:
            raise Conflict("This Idempotency-Key was already used with a different request body.")
        return existing, True
    return _question_insert(Message(**fields)), False


def _question_insert(question: Message) -> Message:
    """Stores the question; the statement reads its history too (kept on the instance for
    `_history`, which takes it once)."""
    question, pairs = message_store_reading(message=question, read=_history_read)
    question.__dict__["_history_pairs"] = pairs
    return question


def _question_by_key(*, conversation: Conversation, key: str) -> Message | None:
    return (
        Message.objects.for_organization(conversation.organization_id)
        .filter(conversation=conversation, idempotency_key=key, role=Message.Role.USER)
        .first()
    )


def _answer_of(question: Message) -> Message | None:
    return (
        Message.objects.for_organization(question.organization_id)
        .filter(in_reply_to=question, role=Message.Role.ASSISTANT)
        .exclude(status=Message.Status.FAILED)
        .order_by("created_at")
        .first()
    )


@contextmanager
def _turn_lock(question: Message, enabled: bool):
    """Serialises answering one question (same Idempotency-Key sent concurrently).

    A session-level Postgres advisory lock: held outside any transaction for the length
    of the provider call, released when done, and by Postgres itself if the process dies.
    """
    if not enabled:
        yield
        return
    key = zlib.crc32(str(question.pk).encode()) - 2**31
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


# --- the answer ------------------------------------------------------------------------


@dataclass(frozen=True)
class TurnPlan:
    request: CompletionRequest
    evidence_by_number: dict
    toolbox: actions.Toolbox | None = None
    refusal: str = ""  # the model must not be called (its base URL is no longer allowed)


def _history_read(question: Message) -> tuple[str, list]:
    """The SQL (an array of [role, content] pairs, newest first) of the question's history:
    the last CHAT_HISTORY_TURNS exchanges before it, failed answers left out. Written as SQL:
    the ORM built this fixed query for ~1 ms of Python on every chat turn. Read by the
    statement storing the question (`message_store_reading`), or on its own for a stored one."""
    return (
        f"ARRAY(SELECT ARRAY[role::text, content] FROM {Message._meta.db_table} "  # noqa: S608
        "WHERE organization_id = %s AND conversation_id = %s AND created_at < %s AND status <> %s "
        "ORDER BY created_at DESC LIMIT %s)",
        [
            question.organization_id,
            question.conversation_id,
            question.created_at,
            Message.Status.FAILED,
            settings.CHAT_HISTORY_TURNS * 2,
        ],
    )


def _history(conversation: Conversation, question: Message) -> tuple[tuple[ChatMessage, ...], str]:
    # Read with the question when this request stored it (one statement fewer a turn).
    rows = question.__dict__.pop("_history_pairs", None)
    if rows is None:
        expression, params = _history_read(question)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {expression}", params)
            (rows,) = cursor.fetchone()
    history = []
    previous_question = ""
    for role, content in reversed(rows):
        if role == Message.Role.USER:
            history.append(ChatMessage(role="user", content=content))
            previous_question = content
        elif role == Message.Role.OPERATOR:
            history.append(ChatMessage(role="assistant", content=f"(human agent) {content}"))
        else:
            history.append(ChatMessage(role="assistant", content=content))
    return tuple(history), previous_question


def _plan(
    *,
    conversation: Conversation,
    question: Message,
    rules: prompts.CompanyRules,
    provider=None,
    verified: bool = False,
) -> TurnPlan:
    assistant = conversation.assistant
    route = model_route(organization=conversation.organization, assistant_model=assistant.model)
    model = route.model
    toolbox = actions.toolbox_for(
        conversation=conversation, provider=provider, model=model, verified=verified, question=question
    )
    history, previous_question = _history(conversation, question)
    evidence, relevant = grounding.evidence_gather(  # times its own embed/retrieve phases
        organization=conversation.organization,
        assistant=assistant,
        question=question.content,
        rules=rules,
        previous_question=previous_question,
        extracts=getattr(provider, "name", "") == "offline",
    )
    context = conversation_user_context(conversation=conversation)
    traits = context.traits if context is not None else {}
    # The visitor's own language when the question shows it, else the conversation's.
    question_language = analysis.language_detect(question.content, default="")
    persona = prompts.Persona(
        name=assistant.name,
        description=assistant.description,
        tone=assistant.tone,
        language=assistant.language,
        instructions=assistant.instructions,
        default_tasks=tuple(str(task) for task in (assistant.default_tasks or [])),
    )
    prompt = prompts.PromptInput(
        persona=persona,
        question=question.content,
        evidence=evidence,
        history=history,
        rules=rules,
        traits=traits if isinstance(traits, dict) else {"traits": traits},
        locale=conversation.locale,
        actions=toolbox is not None,
        question_language=question_language,
        # A greeting or a thank-you is not a question the knowledge failed to answer.
        nothing_relevant=not relevant and prompts.small_talk_kind(question.content) is None,
    )
    request = CompletionRequest(
        model=model,
        messages=prompts.messages_build(prompt),
        question=question.content,
        evidence=evidence,
        relevant=relevant,
        language=question_language or conversation.locale or assistant.language or "en",
        temperature=assistant.temperature,
        max_tokens=settings.LLM_MAX_TOKENS,
        timeout=settings.LLM_TIMEOUT,
        max_retries=settings.LLM_MAX_RETRIES,
        api_base=route.api_base,
        api_base_checked=route.api_base_checked,
        api_key=route.api_key,
        tools=toolbox.specs if toolbox is not None else (),
    )
    return TurnPlan(
        request=request,
        evidence_by_number={item.number: item for item in evidence},
        toolbox=toolbox,
        refusal=route.refusal,
    )


# What the answer says when the model, out of calls, still gave no text.
LOOKUP_FAILED_TEXT = (
    "I'm sorry, I couldn't complete that lookup right now. Would you like to talk to a human agent?"
)


def _answer_rounds(*, provider, plan: TurnPlan, stream: bool):
    """The model's answer, calling the offered actions it asks for on the way.

    Yields text deltas (streaming only) and, last, one `Completion`: the text of every round,
    the usage of all of them. Without a toolbox this is exactly one provider call. With one,
    each round's tool calls are run (`chat.actions.call_run`) and their results sent back, up
    to ACTIONS_MAX_CALLS_PER_TURN calls; after that the model must answer in text.
    """
    if plan.refusal:
        raise ProviderError(plan.refusal)
    toolbox = plan.toolbox
    request = plan.request
    if toolbox is None:
        if stream:
            yield from provider.stream(request)
        else:
            yield provider.complete(request)
        return
    # A retried turn starts where its failed attempt stopped: the actions it ran are not run again.
    texts, replayed = toolbox.replayed()
    messages = [*request.messages, *replayed]
    limit = settings.ACTIONS_MAX_CALLS_PER_TURN
    prompt_tokens = completion_tokens = 0
    cost = 0.0
    while True:
        may_call = toolbox.calls_made < limit
        round_request = replace(request, messages=tuple(messages), tool_choice="auto" if may_call else "none")
        completion = None
        if stream:
            separator_due = bool(texts)
            with closing(provider.stream(round_request)) as events:
                for event in events:
                    if isinstance(event, Delta):
                        if separator_due and event.text.strip():
                            yield Delta(text="\n\n")
                            separator_due = False
                        yield event
                    else:
                        completion = event
        else:
            completion = provider.complete(round_request)
        if completion is None:
            completion = Completion(content="", model=request.model)
        prompt_tokens += completion.prompt_tokens
        completion_tokens += completion.completion_tokens
        cost += completion.cost
        if completion.content.strip():
            texts.append(completion.content.strip())
        if not completion.tool_calls or not may_call:
            content = "\n\n".join(texts)
            if not content:
                content = LOOKUP_FAILED_TEXT
                if stream:
                    yield Delta(text=content)
            yield replace(
                completion,
                content=content,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost=cost,
                tool_calls=(),
            )
            return
        messages.append(
            ChatMessage(role="assistant", content=completion.content, tool_calls=completion.tool_calls)
        )
        actions.round_begin(toolbox=toolbox, content=completion.content, calls=completion.tool_calls)
        for call in completion.tool_calls:
            outcome = actions.call_once(toolbox=toolbox, call=call, limit=limit)
            messages.append(ChatMessage(role="tool", content=outcome.result, tool_call_id=call.id))


def _sources_for(plan: TurnPlan, completion: Completion) -> tuple[list[dict], bool]:
    """(sources to store, whether the answer is grounded). A reply to small talk ("thanks, that
    helps") cites nothing, even when the search, taking it as a follow-up, found passages."""
    if not completion.knows or prompts.says_no_answer(completion.content):
        return [], False
    if prompts.small_talk_kind(plan.request.question):
        return [], False
    numbers = list(completion.cited)
    if not numbers:
        numbers = [int(n) for n in _CITATION.findall(completion.content) if int(n) in plan.evidence_by_number]
    if not numbers:
        numbers = list(plan.request.relevant)
    numbers = list(dict.fromkeys(numbers))
    sources = []
    for number in numbers:
        item = plan.evidence_by_number.get(number)
        if item is not None:
            sources.append(dict(item.source, number=number))
    return sources, bool(plan.request.relevant) or bool(completion.cited)


def _answer_store(
    *,
    conversation: Conversation,
    question: Message,
    plan: TurnPlan,
    completion: Completion,
    started: float,
    status: str = Message.Status.COMPLETE,
) -> Message:
    sources, answered = _sources_for(plan, completion)
    tool_calls = list(plan.toolbox.records) if plan.toolbox is not None else []
    # An answer built on a successful lookup is an answer, even without a knowledge source.
    answered = answered or any(record["status"] == actions.OK for record in tool_calls)
    needs_status = question.status != Message.Status.COMPLETE
    with transaction.atomic() if needs_status else nullcontext():
        answer = Message(
            organization_id=conversation.organization_id,
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            content=completion.content,
            sources=sources,
            tool_calls=tool_calls,
            in_reply_to=question,
            status=status,
            answered=answered and status == Message.Status.COMPLETE,
            # A reply to "thanks!" or "hello" is neither answered nor unanswered: the overview
            # leaves it out and it never counts towards a streak of unanswered questions.
            metadata={"small_talk": True} if prompts.small_talk_kind(question.content) else {},
            model=completion.model,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            cost=round(completion.cost, 6),
            latency_ms=int((time.perf_counter() - started) * 1000),
        )
        message_store(message=answer)
        # The question's record of the actions run (for a retry of this turn) is done with;
        # without a status to fix, that alone needs no transaction around the answer.
        if needs_status or question.tool_rounds:
            question.status = Message.Status.COMPLETE
            question.tool_rounds = []
            question.save(update_fields=["status", "tool_rounds"])
    return answer


def _question_failed(question: Message) -> None:
    """Unanswered (for now): kept, and answered by a retry with the same Idempotency-Key."""
    question.status = Message.Status.FAILED
    question.save(update_fields=["status"])


def _failed(question: Message, error: ProviderError) -> Exception:
    """Marks the question as unanswered (for now) and returns the API error to raise."""
    _question_failed(question)
    if isinstance(error, ProviderTimeout):
        return UpstreamTimeout(
            "The language model did not answer in time; your message was saved, please retry."
        )
    if isinstance(error, ProviderOverloaded):
        return ServiceUnavailable(
            "The language model is busy; your message was saved, please retry shortly.",
            details={"retry_after": error.retry_after, "message_id": str(question.pk)},
        )
    return UpstreamError(
        "The language model failed to answer; your message was saved, please retry.",
        details={"message_id": str(question.pk)},
    )


# --- the daily LLM budget --------------------------------------------------------------------


def _budget_ensure(*, conversation: Conversation, question: Message) -> None:
    """Refuses (429, question kept as failed) when the organization's budget is used up.

    Checked before retrieval and the provider call, so a drained budget costs neither.
    """
    status = metering.budget_exhausted(organization=conversation.organization)
    if status is None:
        return
    _question_failed(question)
    raise BudgetExhausted(
        "This organization's daily AI budget is used up; it resets at 00:00 UTC.",
        details={"retry_after": status.resets_in, "message_id": str(question.pk)},
    )


# --- concurrent LLM turns -----------------------------------------------------------------

# A refused turn is told to come back after about one typical provider answer.
LLM_RETRY_AFTER_SECONDS = 5


@contextmanager
def _llm_turn_slot(*, conversation: Conversation, question: Message, remote: bool):
    """Holds one of the organization's concurrent-LLM-turn slots for the block.

    A turn waits on its provider for seconds (a minute when it is slow), holding a web
    thread; at most LLM_CONCURRENCY_PER_ORG such turns per organization (and
    LLM_CONCURRENCY_TOTAL overall) run at once across every web process, so one tenant's
    slow provider or burst cannot hold every thread. The excess is refused before
    retrieval and the call: 429 (503 for the overall cap) with Retry-After, the question
    kept as failed so a retry answers it. The in-process offline answerer is not capped.
    """
    if not remote:
        yield
        return
    caps = (
        Cap(group=f"llm:org:{conversation.organization_id}", limit=settings.LLM_CONCURRENCY_PER_ORG),
        Cap(group="llm:all", limit=settings.LLM_CONCURRENCY_TOTAL),
    )
    # Longer than a turn can last (every attempt timing out, plus retrieval; with assistant
    # actions, every round of calls), so a lease never expires under a live holder; a holder
    # that died frees it after this at most.
    rounds = 1 if settings.LLM_TOOL_CALLING == "off" else settings.ACTIONS_MAX_CALLS_PER_TURN + 1
    lease_seconds = (
        settings.LLM_TIMEOUT * (settings.LLM_MAX_RETRIES + 1) * rounds
        + settings.ACTIONS_TIMEOUT * (rounds - 1)
        + 60
    )
    with ExitStack() as stack:
        try:
            stack.enter_context(slots_held(caps=caps, lease_seconds=lease_seconds))
        except CapReached as refused:
            _question_failed(question)
            data = {"retry_after": LLM_RETRY_AFTER_SECONDS, "message_id": str(question.pk)}
            if refused.cap is caps[0]:
                raise TooManyConcurrent(
                    f"This organization already has {refused.cap.limit} answers being written; "
                    "your message was saved, please retry shortly.",
                    details=data,
                ) from None
            raise ServiceUnavailable(
                "The assistant is busy; your message was saved, please retry shortly.", details=data
            ) from None
        yield


@dataclass(frozen=True)
class _Answering:
    provider: object
    metered: bool
    plan: TurnPlan
    started: float

    def usage_record(self, *, conversation: Conversation, completion: Completion) -> None:
        if self.metered:
            metering.usage_record(
                organization=conversation.organization, request=self.plan.request, completion=completion
            )

    def estimate(self, text: str) -> Completion:
        return metering.usage_estimate(request=self.plan.request, text=text)


@contextmanager
def _answering(
    *, conversation: Conversation, question: Message, rules: prompts.CompanyRules, verified: bool
) -> Iterator[_Answering]:
    """What every answer does before calling the model: choose the provider, check the budget
    (metered providers), hold a concurrency slot (remote ones) and plan the prompt."""
    started = time.perf_counter()
    provider = provider_get(
        model=model_resolve(
            assistant_model=conversation.assistant.model, organization=conversation.organization
        )
    )
    metered = metering.is_metered(provider)
    if metered:
        _budget_ensure(conversation=conversation, question=question)
    with _llm_turn_slot(conversation=conversation, question=question, remote=metered):
        plan = _plan(
            conversation=conversation, question=question, rules=rules, provider=provider, verified=verified
        )
        yield _Answering(provider=provider, metered=metered, plan=plan, started=started)


def reply_generate(
    *,
    conversation: Conversation,
    question: Message,
    rules: prompts.CompanyRules | None = None,
    verified: bool = False,
) -> Message:
    """Answers a stored question (also used to retry one whose answer failed).

    `verified`: the one asking is trusted with actions marked `requires_verified_visitor`.
    """
    rules = rules or _rules_stored(conversation)
    with _answering(
        conversation=conversation, question=question, rules=rules, verified=verified
    ) as answering:
        try:
            with timing.phase("llm"):
                *_deltas, completion = _answer_rounds(
                    provider=answering.provider, plan=answering.plan, stream=False
                )
        except ProviderError as error:
            raise _failed(question, error) from None
    answering.usage_record(conversation=conversation, completion=completion)
    return _answer_store(
        conversation=conversation,
        question=question,
        plan=answering.plan,
        completion=completion,
        started=answering.started,
    )


def _remember_rules(conversation: Conversation, context: dict | None) -> prompts.CompanyRules:
    """The widget chat API sends its context per request; later turns without it reuse the last one."""
    if context:
        rules = company_rules_from_payload(context)
        if not rules.is_empty and (conversation.metadata or {}).get("company_context") != context:
            conversation.metadata = dict(conversation.metadata or {}, company_context=context)
            conversation.save(update_fields=["metadata", "updated_at"])
        return rules
    return _rules_stored(conversation)


def _person_needed(conversation: Conversation, question: Message) -> bool:
    """Whether the bot stays silent on this question: a person has it, is being waited for,
    is asked for in it, or the conversation was resolved (a new message reopens it as
    waiting, SPEC's "Support desk")."""
    if conversation.bot_is_silent:
        return True
    if conversation.handoff_status == Conversation.HandoffStatus.RESOLVED:
        handoff.handoff_request(conversation=conversation, trigger=Conversation.HandoffTrigger.REOPENED)
        return True
    languages = (conversation.locale, conversation.assistant.language)
    if escalation.asks_for_person(text=question.content, languages=languages) or _offer_accepted(
        conversation, question
    ):
        handoff.handoff_request(conversation=conversation, trigger=Conversation.HandoffTrigger.ASKED)
        return True
    return False


def _offer_accepted(conversation: Conversation, question: Message) -> bool:
    """ "Yes please" right after an answer that found nothing: every such answer ends with the
    offer of a person (prompts.NO_ANSWER, the model's NOTHING_RELEVANT_INSTRUCTION), so
    the visitor is taking it, not asking a new question. Found walking the widget: "yes
    please" got the same refusal again and counted as a second unanswered question."""
    if not escalation.accepts_offer(text=question.content) or prompts.small_talk_kind(question.content):
        return False
    previous = (
        Message.objects.for_organization(conversation.organization_id)
        .filter(conversation=conversation, seq__lt=question.seq)
        .exclude(role=Message.Role.USER)
        .order_by("-seq")
        .values("role", "answered", "status", "metadata")
        .first()
    )
    return bool(
        previous
        and previous["role"] == Message.Role.ASSISTANT
        and previous["status"] == Message.Status.COMPLETE
        and not previous["answered"]
        and not (previous["metadata"] or {}).get("small_talk")
    )


def _turn_open(
    *,
    conversation: Conversation,
    content: str,
    metadata: dict | None,
    context: dict | None,
    idempotency_key: str,
) -> tuple[Message, prompts.CompanyRules, Message | None]:
    """Stores the question: (question, rules, settled) where `settled` is what to return without
    answering (the earlier answer of a replayed Idempotency-Key, or the question itself when
    a person is needed), else None."""
    rules = _remember_rules(conversation, context)
    question, replayed = _question_store(
        conversation=conversation, content=content, metadata=metadata, idempotency_key=idempotency_key
    )
    if replayed:
        answer = _answer_of(question)
        if answer is not None:
            return question, rules, answer
    if _person_needed(conversation, question):
        return question, rules, question
    return question, rules, None


@contextmanager
def _answer_settled(question: Message, idempotency_key: str) -> Iterator[Message | None]:
    """Holds the turn's lock (one answer per Idempotency-Key); yields the answer a concurrent
    request with the same key stored while this one waited for the lock, if any."""
    with _turn_lock(question, bool(idempotency_key)):
        yield _answer_of(question) if idempotency_key else None


def message_post(
    *,
    conversation: Conversation,
    content: str,
    metadata: dict | None = None,
    context: dict | None = None,
    idempotency_key: str = "",
    verified: bool = False,
) -> Message:
    """Stores the user's message, answers it and returns the stored answer.

    `verified`: the caller is trusted with actions marked `requires_verified_visitor` (an API
    key, the dashboard, a widget visitor with a proven identity; not an anonymous visitor).

    When a person is waited for or has the conversation (or this message asks for one, or
    reopens a resolved conversation), the message is stored and the user's own message is
    returned (role "user"): the bot stays silent.
    """
    question, rules, settled = _turn_open(
        conversation=conversation,
        content=content,
        metadata=metadata,
        context=context,
        idempotency_key=idempotency_key,
    )
    if settled is not None:
        return settled
    with _answer_settled(question, idempotency_key) as settled:
        if settled is not None:
            return settled
        answer = reply_generate(conversation=conversation, question=question, rules=rules, verified=verified)
    handoff.unanswered_streak_check(conversation=conversation, answer=answer)
    return answer


def message_post_stream(
    *,
    conversation: Conversation,
    content: str,
    metadata: dict | None = None,
    context: dict | None = None,
    idempotency_key: str = "",
    verified: bool = False,
) -> Iterator[tuple[str, object]]:
    """Like `message_post`, as events: ("token", text)…, then ("done", stored Message).

    Work starts at the first `next()`: the caller pulls the first event before sending
    any response, so a failure before the first token still becomes a 502/504. If the
    consumer stops early (the client disconnected), the upstream stream is closed and
    the partial answer is stored as `truncated`.
    """
    question, rules, settled = _turn_open(
        conversation=conversation,
        content=content,
        metadata=metadata,
        context=context,
        idempotency_key=idempotency_key,
    )
    if settled is not None:
        yield ("done", settled)
        return
    with _answer_settled(question, idempotency_key) as settled:
        if settled is not None:
            yield ("done", settled)
            return
        with _answering(
            conversation=conversation, question=question, rules=rules, verified=verified
        ) as answering:
            plan = answering.plan
            stream = _answer_rounds(provider=answering.provider, plan=plan, stream=True)
            parts: list[str] = []
            completion = None
            try:
                with timing.phase("llm"):
                    for event in stream:
                        if isinstance(event, Delta):
                            parts.append(event.text)
                            yield ("token", event.text)
                        else:
                            completion = event
            except GeneratorExit:
                stream.close()
                if parts:
                    # Metered by estimate: the provider never sent its usage.
                    partial = answering.estimate("".join(parts))
                    answering.usage_record(conversation=conversation, completion=partial)
                    _answer_store(
                        conversation=conversation,
                        question=question,
                        plan=plan,
                        completion=partial,
                        started=answering.started,
                        status=Message.Status.TRUNCATED,
                    )
                raise
            except ProviderError as error:
                if parts:  # the tokens already streamed were spent all the same
                    answering.usage_record(
                        conversation=conversation, completion=answering.estimate("".join(parts))
                    )
                raise _failed(question, error) from None
        if completion is None:
            completion = Completion(content="".join(parts).strip(), model=plan.request.model)
        answering.usage_record(conversation=conversation, completion=completion)
        answer = _answer_store(
            conversation=conversation,
            question=question,
            plan=plan,
            completion=completion,
            started=answering.started,
        )
    handoff.unanswered_streak_check(conversation=conversation, answer=answer)
    yield ("done", answer)
