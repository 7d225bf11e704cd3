"""The built-in answerer used when no model is configured: extractive, no network.

It answers with the most relevant grounding the engine found (a Q&A pair's answer, a
company policy, or the best sentences of a document passage), cites it, and says it
does not know - offering a human - when nothing relevant was found. It cannot translate: a
passage in another language than the visitor's is quoted after a sentence, in the visitor's
language, that says it can only quote the knowledge base. A message that is only
a greeting or a thank-you gets a greeting back, not "I don't have information".
"""

from __future__ import annotations

from collections.abc import Iterator

from chat import relevance
from chat.llm.types import Completion, CompletionRequest, Delta
from chat.prompts import language_code, no_answer_text, quote_preface, small_talk_kind, small_talk_text

MODEL_NAME = "offline"


class OfflineAnswerer:
    name = "offline"
    metered = False  # answers from the knowledge base in-process: no tokens, no budget

    def complete(self, request: CompletionRequest) -> Completion:
        by_number = {item.number: item for item in request.evidence}
        relevant = [by_number[number] for number in request.relevant if number in by_number]
        # Small talk first, whatever was retrieved: "thanks, that helps" after an answer is
        # searched as a follow-up of the question before, finds its passage again, and used to
        # get the same answer repeated (found walking the widget). The whole message being a
        # greeting or a thank-you (small_talk_kind is that narrow) makes it no question.
        if kind := small_talk_kind(request.question):
            text = small_talk_text(kind, request.language)
            return Completion(
                content=text, model=MODEL_NAME, completion_tokens=_count(text), knows=True, cited=()
            )
        if not relevant:
            text = no_answer_text(request.language)
            return Completion(
                content=text, model=MODEL_NAME, completion_tokens=_count(text), knows=False, cited=()
            )
        # A question of several parts, each answered by its own item (chat.grounding tags them),
        # gets each part's answer in turn; otherwise the best item answers.
        quoted = [item for item in relevant if item.asked]
        if len(quoted) < 2:
            quoted = relevant[:1]
        text = "\n\n".join(_quote(item, item.asked or request.question) for item in quoted)
        if any(
            item.language and language_code(item.language) != language_code(request.language)
            for item in quoted
        ):
            # It cannot translate: it says so in the visitor's language, then quotes.
            text = f"{quote_preface(request.language)}\n\n{text}"
        return Completion(
            content=text,
            model=MODEL_NAME,
            prompt_tokens=sum(_count(message.content) for message in request.messages),
            completion_tokens=_count(text),
            cited=tuple(item.number for item in quoted),
            knows=True,
        )

    def stream(self, request: CompletionRequest) -> Iterator[Delta | Completion]:
        completion = self.complete(request)
        # Word-sized deltas, so a streaming client renders the same way for every provider.
        words = completion.content.split(" ")
        for index, word in enumerate(words):
            yield Delta(text=word if index == 0 else " " + word)
        yield completion


def _quote(item, question: str) -> str:
    """What the answer quotes of `item` for `question`: a Q&A pair's answer, else the sentences
    of the passage that answer it."""
    if item.kind == "qa" and item.answer:
        return item.answer.strip()
    if item.kind == "policy":
        return relevance.best_sentences(question, item.content, limit=4, max_chars=900)
    return item.extract or relevance.best_sentences(question, item.content)


def _count(text: str) -> int:
    """A token estimate (~4 characters per token) for usage figures without a tokenizer."""
    return max(1, len(text) // 4) if text else 0
