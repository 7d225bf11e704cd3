"""The provider interface: plain frozen dataclasses in, plain frozen dataclasses out.

Nothing here knows about Django models or litellm; the engine builds a
`CompletionRequest`, a provider turns it into a `Completion` (or a stream of `Delta`s
ending with a `Completion`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for: `arguments` is the JSON text it sent."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant" | "tool"
    content: str
    tool_calls: tuple[ToolCall, ...] = ()  # an assistant turn that called tools
    tool_call_id: str = ""  # a "tool" message: which call this is the result of


@dataclass(frozen=True)
class Evidence:
    """One numbered piece of grounding the answer may cite as [number]."""

    number: int
    kind: str  # "qa" | "file" | "url" | "policy" | "company" | "scraped"
    title: str
    content: str
    relevance: float  # 0..1, how well it matches the question (see chat.relevance)
    question: str = ""  # for Q&A pairs
    answer: str = ""  # for Q&A pairs
    source: dict = field(default_factory=dict)  # the `sources` entry stored on the answer
    language: str = ""  # a knowledge passage's language (ISO 639-1); "" for request-supplied context
    # A knowledge chunk's stored embedding (retrieval already has it; a read-only numpy float32
    # array): relevance is scored with it instead of embedding the passage again on every turn.
    vector: numpy.ndarray | None = field(default=None, repr=False, compare=False)
    # A Q&A pair's question's stored vector (`knowledge.types.Passage.question_embedding`).
    key_vector: numpy.ndarray | None = field(default=None, repr=False, compare=False)
    # The passage's sentence that answers the question, chosen by meaning where shared words
    # cannot choose it (a question in another language than the passage; see
    # chat.grounding.evidence_gather). The offline answerer quotes it; "" = chosen by words.
    extract: str = ""
    # The part of a question of several parts this item answers ("can I return it if it doesn't
    # fit?" of "How long does shipping take and can I return it if it doesn't fit?"); "" = the
    # whole question (chat.grounding.evidence_gather).
    asked: str = ""


@dataclass(frozen=True)
class CompletionRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    question: str
    evidence: tuple[Evidence, ...] = ()
    relevant: tuple[int, ...] = ()  # numbers of the evidence items judged relevant
    language: str = "en"
    temperature: float = 0.2
    max_tokens: int = 800
    timeout: float = 60.0
    max_retries: int = 2
    api_base: str = ""
    api_key: str = field(default="", repr=False)
    # The api_base is an organization's own (Settings › AI model), not the server admin's:
    # every connection to it is checked and pinned by core.fetcher, and no redirect is followed.
    api_base_checked: bool = False
    # Functions the model may call (OpenAI tool format: {"type": "function", "function": {…}})
    # and whether it may call one now ("auto") or must answer in text ("none").
    tools: tuple[dict, ...] = ()
    tool_choice: str = "auto"


@dataclass(frozen=True)
class Completion:
    content: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cited: tuple[int, ...] = ()  # evidence numbers the answer relies on
    knows: bool = True  # False when the provider said it does not know
    finish_reason: str = "stop"
    tool_calls: tuple[ToolCall, ...] = ()  # the model wants these called before it answers


@dataclass(frozen=True)
class Delta:
    text: str


class LLMProvider(Protocol):
    name: str
    # Whether calls spend tokens that count against the organization's daily LLM budget
    # (the engine treats a provider without this attribute as metered).
    metered: bool

    def complete(self, request: CompletionRequest) -> Completion: ...

    def stream(self, request: CompletionRequest) -> Iterator[Delta | Completion]:
        """Yields text deltas, then exactly one final `Completion` (the whole answer)."""
        ...

    # Optional: `supports_tools(model) -> bool`; a provider without it is never offered tools
    # (the offline answerer has none: it never calls actions).


class ProviderError(Exception):
    """The model provider failed (after retries). Maps to 502."""

    def __init__(
        self, message: str = "The language model provider failed.", *, retry_after: float | None = None
    ):
        super().__init__(message)
        self.retry_after = retry_after


class ProviderTimeout(ProviderError):
    """The model provider did not answer in time. Maps to 504."""


class ProviderOverloaded(ProviderError):
    """The provider kept rate-limiting us (429) through every retry. Maps to 503."""
