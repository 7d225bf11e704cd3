"""Reads of the chat app: conversations, transcripts, the inbox and its statistics."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import (
    Aggregate,
    Avg,
    BooleanField,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Extract, TruncDate
from django.utils import timezone

from assistants.models import UserContext
from chat import escalation, prompts
from chat.models import (
    Conversation,
    ConversationNote,
    CsatRating,
    ErasedVisitor,
    Message,
    SavedReply,
    erased_visitor_digest,
)
from chat.search import message_document, message_query
from core.compiled import CompiledQuery
from core.errors import NotFound, ValidationFailed
from organizations.models import Organization


def _conversation_query(*, organization_id, conversation_id, kind=None, visitor_id=None) -> QuerySet:
    queryset = Conversation.objects.for_organization(organization_id).select_related(
        "assistant", "user_context"
    )
    if kind is not None:
        queryset = queryset.filter(kind=kind)
    if visitor_id is not None:
        queryset = queryset.filter(visitor_id=visitor_id)
    # No ORDER BY (the model's ordering, for at most one row).
    return queryset.filter(pk=conversation_id).order_by()[:1]


# Every API call on a conversation starts here (a chat turn, the live stream's reconnect):
# compiled once, it costs a third of the Python it did.
_CONVERSATION = CompiledQuery(
    _conversation_query,
    parameters={
        "organization_id": Conversation._meta.get_field("organization"),
        "conversation_id": Conversation._meta.pk,
        "kind": Conversation._meta.get_field("kind"),
        "visitor_id": Conversation._meta.get_field("visitor_id"),
    },
)


def conversation_get(
    *, organization, conversation_id, kind: str | None = None, visitor_id: str | None = None
) -> Conversation:
    """One conversation of `organization`, or NotFound (the same for "not yours"), with its
    assistant and user context; `organization` (the caller's instance) is its organization.

    `visitor_id` restricts to a widget visitor's own sessions.
    """
    found = _CONVERSATION.fetch(
        organization_id=getattr(organization, "pk", organization),
        conversation_id=conversation_id,
        kind=kind or None,
        visitor_id=visitor_id,
    )
    if not found:
        raise NotFound(
            "Session not found." if kind == Conversation.Kind.SESSION else "Conversation not found."
        )
    conversation = found[0]
    if isinstance(organization, Organization):
        conversation.organization = organization  # the same row: not read again
    return conversation


def message_get(*, conversation: Conversation, message_id) -> Message:
    message = (
        Message.objects.for_organization(conversation.organization_id)
        .filter(conversation=conversation, pk=message_id)
        .first()
    )
    if message is None:
        raise NotFound("Message not found.")
    return message


def message_list(*, conversation: Conversation, after=None) -> QuerySet[Message]:
    """A transcript in commit order (`Message.seq`); `after` (a message id) keeps only the
    messages committed after that one."""
    queryset = Message.objects.for_organization(conversation.organization_id).filter(
        conversation=conversation
    )
    if after:
        anchor = queryset.filter(pk=after).values("seq").first()
        if anchor is None:
            raise NotFound("Message not found.")
        queryset = queryset.filter(seq__gt=anchor["seq"])
    return queryset.order_by("seq")


def message_list_since(*, conversation: Conversation, after=None) -> QuerySet[Message]:
    """Like `message_list`, in a single query (the `after` message's `seq` is a subquery on the
    primary key, the rest a range on the (conversation, seq) unique index); an `after` that is
    not a message of this conversation keeps the whole transcript instead of a 404.

    `seq` follows commit order, so a stream that has read a message has read every message
    numbered before it: resuming after it cannot skip one committed late (a writer whose
    `created_at` is earlier but whose commit came later)."""
    queryset = Message.objects.for_organization(conversation.organization_id).filter(
        conversation=conversation
    )
    if after:
        anchor = queryset.filter(pk=after).values("seq")[:1]
        queryset = queryset.filter(seq__gt=Coalesce(Subquery(anchor), Value(0)))
    return queryset.order_by("seq")


# The inbox's orderings: newest activity first (a conversation without messages after every
# one with), and the waiting queue oldest request first.
INBOX_ORDER = (F("last_message_at").desc(nulls_last=True), F("created_at").desc(), F("id").desc())
WAITING_ORDER = ("handoff_requested_at", "created_at", "id")


def conversation_list(
    *,
    organization,
    kind: str | None = None,
    customer_id: str | None = None,
    assistant=None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    handed_off: bool | None = None,
    handoff_status: str | None = None,
    assigned_to=None,
    open_only: bool | None = None,
    unanswered: bool | None = None,
    feedback: str | None = None,
    search: str | None = None,
) -> QuerySet[Conversation]:
    """The inbox: newest activity first, with the filters operators use.

    `handed_off` = taken over by a human now; `unanswered` = at least one answer that was
    not grounded in knowledge; `feedback` = "up" | "down" | "any" (some rated answer);
    `assigned_to` = a user ("mine"); `open_only` = not resolved (the operator's open work). The waiting queue (`handoff_status="waiting"`) is oldest
    request first and carries the bot's last answer (`last_answer`).
    """
    queryset = Conversation.objects.for_organization(organization).select_related(
        "assistant", "user_context", "assigned_to"
    )
    if kind:
        queryset = queryset.filter(kind=kind)
    if customer_id:
        queryset = queryset.filter(customer_id=customer_id)
    if assistant is not None:
        queryset = queryset.filter(assistant=assistant)
    if date_from:
        queryset = queryset.filter(created_at__date__gte=date_from)
    if date_to:
        queryset = queryset.filter(created_at__date__lte=date_to)
    if handed_off is True:
        queryset = queryset.filter(handoff_status=Conversation.HandoffStatus.HUMAN)
    elif handed_off is False:
        queryset = queryset.exclude(handoff_status=Conversation.HandoffStatus.HUMAN)
    if handoff_status:
        queryset = queryset.filter(handoff_status=handoff_status)
    if assigned_to is not None:
        queryset = queryset.filter(assigned_to=assigned_to)
    if open_only:
        queryset = queryset.exclude(handoff_status=Conversation.HandoffStatus.RESOLVED)
    messages = Message.objects.for_organization(organization).filter(conversation=OuterRef("pk"))
    if unanswered:
        queryset = queryset.filter(
            Exists(
                messages.filter(role=Message.Role.ASSISTANT, answered=False, status=Message.Status.COMPLETE)
            )
        )
    if feedback == "up":
        queryset = queryset.filter(Exists(messages.filter(feedback=1)))
    elif feedback == "down":
        queryset = queryset.filter(Exists(messages.filter(feedback=-1)))
    elif feedback == "any":
        queryset = queryset.filter(Exists(messages.filter(feedback__isnull=False)))
    if search:
        # The conversation's own short fields (identifiers: any part of them) as substrings;
        # message text by its words, from the full-text index (`chat.search`).
        matches = (
            Q(title__icontains=search) | Q(customer_id__icontains=search) | Q(visitor_id__icontains=search)
        )
        words = message_query(search)
        if words is not None:
            found = (
                Message.objects.for_organization(organization)
                .alias(document=message_document())
                .filter(document=words)
                .values("conversation")
            )
            matches |= Q(pk__in=found)
        queryset = queryset.filter(matches)
    # A correlated subquery, not a join and GROUP BY over every conversation: Postgres
    # computes it only for the rows it returns (the page), on the (conversation, seq) index,
    # and `count()` (the paginators') leaves it out.
    message_count = messages.order_by().values("conversation").annotate(count=Count("pk")).values("count")
    queryset = queryset.annotate(message_count=Coalesce(Subquery(message_count), Value(0)))
    # Each ordering ends in the primary key (a total order: a page boundary between rows
    # that tie cannot repeat or skip one) and is the column order of an index, so the first
    # page reads that many rows of it (`Conversation.Meta.indexes`).
    if handoff_status == Conversation.HandoffStatus.WAITING:
        last_answer = (
            messages.filter(role=Message.Role.ASSISTANT).order_by("-created_at").values("content")[:1]
        )
        return queryset.annotate(last_answer=Subquery(last_answer)).order_by(*WAITING_ORDER)
    return queryset.order_by(*INBOX_ORDER)


def conversation_notes(*, conversation: Conversation):
    """The team's private notes on a conversation, oldest first (dashboard only)."""
    return (
        ConversationNote.objects.for_organization(conversation.organization_id)
        .filter(conversation=conversation)
        .select_related("author")
    )


def saved_reply_list(*, organization):
    return SavedReply.objects.for_organization(organization).order_by("shortcut")


def waiting_count(*, organization) -> int:
    """Conversations waiting for a person (the inbox badge)."""
    return (
        Conversation.objects.for_organization(organization)
        .filter(handoff_status=Conversation.HandoffStatus.WAITING)
        .count()
    )


def waiting_latest(*, organization):
    """The newest handoff request still waiting (what the dashboard's notifier announces)."""
    return (
        Conversation.objects.for_organization(organization)
        .filter(handoff_status=Conversation.HandoffStatus.WAITING)
        .order_by("-handoff_requested_at")
        .values("id", "handoff_requested_at", "handoff_trigger")
        .first()
    )


@dataclass(frozen=True)
class ChatStats:
    days: list[dict] = field(default_factory=list)  # [{date, conversations, messages, answered, unanswered}]
    conversations: int = 0
    messages: int = 0
    answers: int = 0
    answered: int = 0
    unanswered: int = 0
    handed_off: int = 0
    handoff_rate: float = 0.0
    feedback_up: int = 0
    feedback_down: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    top_unanswered: list[dict] = field(default_factory=list)  # [{question, count, last_asked, handoff}]

    @property
    def answer_rate(self) -> float:
        return self.answered / self.answers if self.answers else 0.0


def _handed_off_q(prefix: str) -> Q:
    """A conversation a person was asked for or took over (`prefix` reaches it)."""
    return (
        Q(**{f"{prefix}handoff_requested_at__isnull": False})
        | Q(**{f"{prefix}handoff_status": Conversation.HandoffStatus.HUMAN})
        | Q(**{f"{prefix}assigned_to__isnull": False})
    )


PLAYGROUND = {"metadata__contains": {"source": "playground"}}  # sessions the playground opens


def _llm_usage(answers):
    """Only answers a model wrote use LLM tokens: the offline answerer's are left out."""
    return answers.exclude(model="offline")


def chat_stats(
    *,
    organization,
    days: int = 30,
    assistant=None,
    today: dt.date | None = None,
    include_playground: bool = False,
) -> ChatStats:
    """Per-day counts and totals for the overview page (the last `days` days).

    Playground conversations are left out unless `include_playground`. A question that was
    turned into a Q&A pair (the pair's question, or the visitor's wording it was made from)
    leaves the list of questions without an answer, unless it was asked again afterwards
    and still went unanswered."""
    today = today or timezone.localdate()
    since = today - dt.timedelta(days=days - 1)
    conversations = Conversation.objects.for_organization(organization).filter(created_at__date__gte=since)
    messages = Message.objects.for_organization(organization).filter(created_at__date__gte=since)
    if not include_playground:
        conversations = conversations.exclude(**PLAYGROUND)
        messages = messages.exclude(**{f"conversation__{key}": value for key, value in PLAYGROUND.items()})
    if assistant is not None:
        conversations = conversations.filter(assistant=assistant)
        messages = messages.filter(conversation__assistant=assistant)
    answers = messages.filter(role=Message.Role.ASSISTANT, status=Message.Status.COMPLETE).exclude(
        metadata__has_key="small_talk"
    )

    per_day: dict[dt.date, dict] = {
        since + dt.timedelta(days=offset): {
            "date": since + dt.timedelta(days=offset),
            "conversations": 0,
            "messages": 0,
            "answered": 0,
            "unanswered": 0,
        }
        for offset in range(days)
    }
    for row in conversations.annotate(day=TruncDate("created_at")).values("day").annotate(n=Count("id")):
        if row["day"] in per_day:
            per_day[row["day"]]["conversations"] = row["n"]
    for row in (
        messages.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            n=Count("id"),
            answered_count=Count(
                "id",
                filter=Q(role=Message.Role.ASSISTANT, status=Message.Status.COMPLETE, answered=True),
            ),
            unanswered_count=Count(
                "id",
                filter=Q(role=Message.Role.ASSISTANT, status=Message.Status.COMPLETE, answered=False),
            ),
        )
    ):
        if row["day"] in per_day:
            per_day[row["day"]].update(
                messages=row["n"], answered=row["answered_count"], unanswered=row["unanswered_count"]
            )

    totals = answers.aggregate(
        answers=Count("id"),
        answered=Count("id", filter=Q(answered=True)),
        up=Count("id", filter=Q(feedback=1)),
        down=Count("id", filter=Q(feedback=-1)),
    )
    usage = _llm_usage(messages.filter(role=Message.Role.ASSISTANT)).aggregate(
        prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), cost=Sum("cost")
    )
    conversation_count = conversations.count()
    handed_off = (
        conversations.filter(
            Q(handoff_status=Conversation.HandoffStatus.HUMAN)
            | Q(handoff_requested_at__isnull=False)
            | Q(assigned_to__isnull=False)
            | Exists(
                Message.objects.for_organization(organization).filter(
                    conversation=OuterRef("pk"), role="operator"
                )
            )
        ).count()
        if conversation_count
        else 0
    )
    handed = _handed_off_q("in_reply_to__conversation__")
    recent_unanswered = (
        answers.filter(answered=False, in_reply_to__isnull=False)
        .annotate(handoff=ExpressionWrapper(handed, output_field=BooleanField()))
        .order_by("-created_at")
        .values_list("in_reply_to__content", "in_reply_to__created_at", "handoff")[:2000]
    )
    # Questions a person was handed (asked while one was waited for or had the conversation,
    # or the one that reopened it) got no answer from the assistant at all: they are gaps in
    # the knowledge too, marked as having led to a handoff. Asking for a person (or "yes
    # please" to the offer of one) and small talk ("thanks!") are not questions worth a Q&A pair.
    handed_questions = (
        messages.filter(role=Message.Role.USER)
        .filter(_handed_off_q("conversation__"))
        .exclude(
            Exists(
                Message.objects.for_organization(organization).filter(
                    in_reply_to=OuterRef("pk"), role=Message.Role.ASSISTANT
                )
            )
        )
        .order_by("-created_at")
        .values_list("content", "created_at", "conversation__locale", "conversation__assistant__language")[
            :2000
        ]
    )
    # ... unless the assistant answered that very question from the knowledge in the period
    # (in another conversation, or before the handoff): found on a walk, "can I throw my tent
    # in the washer?" asked while a person was awaited was listed with "Turn into Q&A" beside
    # the care guide's answer to it.
    answered_keys = {
        _question_key(content or "")
        for content in answers.filter(answered=True, in_reply_to__isnull=False).values_list(
            "in_reply_to__content", flat=True
        )[:5000]
    }
    rows = list(recent_unanswered) + [
        (content, asked_at, True)
        for content, asked_at, locale, language in handed_questions
        if not escalation.asks_for_person(text=content, languages=(locale, language))
        and not escalation.accepts_offer(text=content)
        and prompts.small_talk_kind(content) is None
        and _question_key(content or "") not in answered_keys
    ]
    covered = _questions_covered(organization=organization)
    grouped: dict[str, dict] = {}
    for content, asked_at, handoff in rows:
        question = (content or "").strip()
        if not question:
            continue
        key = _question_key(question)
        if key in covered and asked_at and asked_at <= covered[key]:
            continue  # a Q&A pair answers it now
        entry = grouped.setdefault(
            key, {"question": question, "count": 0, "last_asked": asked_at, "handoff": False}
        )
        entry["count"] += 1
        entry["handoff"] = entry["handoff"] or bool(handoff)
        if asked_at and (entry["last_asked"] is None or asked_at > entry["last_asked"]):
            entry["last_asked"] = asked_at
    top_unanswered = sorted(grouped.values(), key=lambda entry: (-entry["count"], entry["question"]))[:10]

    return ChatStats(
        days=list(per_day.values()),
        conversations=conversation_count,
        messages=messages.count(),
        answers=totals["answers"],
        answered=totals["answered"],
        unanswered=totals["answers"] - totals["answered"],
        handed_off=handed_off,
        handoff_rate=handed_off / conversation_count if conversation_count else 0.0,
        feedback_up=totals["up"],
        feedback_down=totals["down"],
        prompt_tokens=usage["prompt"] or 0,
        completion_tokens=usage["completion"] or 0,
        cost=float(usage["cost"] or 0),
        top_unanswered=top_unanswered,
    )


class _Median(Aggregate):
    """Postgres' exact median of a number of seconds."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def _seconds_between(start: str, end: str):
    return Extract(ExpressionWrapper(F(end) - F(start), output_field=DurationField()), "epoch")


@dataclass(frozen=True)
class SupportStats:
    """The support desk's figures for one period (and optionally one assistant)."""

    days: list[dict] = field(default_factory=list)  # [{date, handoffs, ratings, csat_average}]
    per_assistant: list[dict] = field(default_factory=list)
    handoffs: int = 0
    median_first_reply_seconds: float | None = None
    ratings: int = 0
    csat_average: float | None = None
    csat_distribution: dict = field(default_factory=dict)  # {1: n, …, 5: n}


def support_stats(
    *,
    organization,
    days: int = 30,
    assistant=None,
    today: dt.date | None = None,
    include_playground: bool = False,
) -> SupportStats:
    """Handoffs, time to the first human reply (median, from the request to the first
    operator reply) and CSAT, per day and per assistant, for the overview. Playground
    conversations are left out unless `include_playground`, as in `chat_stats` (a team
    trying "talk to a person" in the playground counted as a visitor's handoff: the overview
    said 2 handoffs, "100 % of" 1 conversation)."""
    today = today or timezone.localdate()
    since = today - dt.timedelta(days=days - 1)
    handed = Conversation.objects.for_organization(organization).filter(handoff_requested_at__date__gte=since)
    replied = Conversation.objects.for_organization(organization).filter(
        first_human_reply_at__date__gte=since, handoff_requested_at__isnull=False
    )
    ratings = CsatRating.objects.for_organization(organization).filter(created_at__date__gte=since)
    if not include_playground:
        handed = handed.exclude(**PLAYGROUND)
        replied = replied.exclude(**PLAYGROUND)
        ratings = ratings.exclude(**{f"conversation__{key}": value for key, value in PLAYGROUND.items()})
    if assistant is not None:
        handed = handed.filter(assistant=assistant)
        replied = replied.filter(assistant=assistant)
        ratings = ratings.filter(conversation__assistant=assistant)

    per_day = {
        since + dt.timedelta(days=offset): {
            "date": since + dt.timedelta(days=offset),
            "handoffs": 0,
            "ratings": 0,
            "csat_average": None,
        }
        for offset in range(days)
    }
    for row in handed.annotate(day=TruncDate("handoff_requested_at")).values("day").annotate(n=Count("id")):
        if row["day"] in per_day:
            per_day[row["day"]]["handoffs"] = row["n"]
    for row in (
        ratings.annotate(day=TruncDate("created_at")).values("day").annotate(n=Count("id"), mean=Avg("score"))
    ):
        if row["day"] in per_day:
            per_day[row["day"]].update(ratings=row["n"], csat_average=float(row["mean"]))

    distribution = {score: 0 for score in range(1, 6)}
    for row in ratings.values("score").annotate(n=Count("id")):
        distribution[row["score"]] = row["n"]
    totals = ratings.aggregate(n=Count("id"), mean=Avg("score"))
    median = replied.aggregate(
        median=_Median(_seconds_between("handoff_requested_at", "first_human_reply_at"))
    )

    by_assistant: dict = {}
    for row in handed.values("assistant_id", "assistant__name").annotate(n=Count("id")):
        by_assistant[row["assistant_id"]] = {"assistant": row["assistant__name"], "handoffs": row["n"]}
    for row in replied.values("assistant_id", "assistant__name").annotate(
        median=_Median(_seconds_between("handoff_requested_at", "first_human_reply_at"))
    ):
        entry = by_assistant.setdefault(
            row["assistant_id"], {"assistant": row["assistant__name"], "handoffs": 0}
        )
        entry["median_first_reply_seconds"] = row["median"]
    for row in ratings.values("conversation__assistant_id", "conversation__assistant__name").annotate(
        n=Count("id"), mean=Avg("score")
    ):
        entry = by_assistant.setdefault(
            row["conversation__assistant_id"],
            {"assistant": row["conversation__assistant__name"], "handoffs": 0},
        )
        entry.update(ratings=row["n"], csat_average=float(row["mean"]))
    per_assistant = sorted(
        (
            {"ratings": 0, "csat_average": None, "median_first_reply_seconds": None, **entry}
            for entry in by_assistant.values()
        ),
        key=lambda entry: entry["assistant"],
    )
    return SupportStats(
        days=list(per_day.values()),
        per_assistant=per_assistant,
        handoffs=handed.count(),
        median_first_reply_seconds=median["median"],
        ratings=totals["n"],
        csat_average=float(totals["mean"]) if totals["mean"] is not None else None,
        csat_distribution=distribution,
    )


def _question_key(question: str) -> str:
    return " ".join(question.lower().split()).rstrip("?!. ")


def _questions_covered(*, organization) -> dict[str, dt.datetime]:
    """Question key -> when a Q&A pair first answered it (its own question, or the visitor's
    question it was made from on the overview)."""
    from knowledge.models import KnowledgeSource

    covered: dict[str, dt.datetime] = {}
    rows = (
        KnowledgeSource.objects.for_organization(organization)
        .filter(kind=KnowledgeSource.Kind.QA)
        .values_list("question", "made_from_question", "created_at")
    )
    for question, made_from, created_at in rows:
        for text in (question, made_from):
            if text and (key := _question_key(text)) and (key not in covered or created_at < covered[key]):
                covered[key] = created_at
    return covered


def message_usage_per_day(
    *,
    organization,
    days: int = 30,
    assistant=None,
    today: dt.date | None = None,
    include_playground: bool = False,
) -> list[dict]:
    """LLM tokens and cost of the answers per day (oldest first), for the overview charts."""
    today = today or timezone.localdate()
    since = today - dt.timedelta(days=days - 1)
    per_day = {
        since + dt.timedelta(days=offset): {
            "date": since + dt.timedelta(days=offset),
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost": 0.0,
        }
        for offset in range(days)
    }
    answers = _llm_usage(
        Message.objects.for_organization(organization).filter(
            role=Message.Role.ASSISTANT, created_at__date__gte=since
        )
    )
    if not include_playground:
        answers = answers.exclude(**{f"conversation__{key}": value for key, value in PLAYGROUND.items()})
    if assistant is not None:
        answers = answers.filter(conversation__assistant=assistant)
    rows = (
        answers.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), cost=Sum("cost"))
    )
    for row in rows:
        if row["day"] in per_day:
            per_day[row["day"]].update(
                prompt_tokens=row["prompt"] or 0,
                completion_tokens=row["completion"] or 0,
                cost=float(row["cost"] or 0),
            )
    return list(per_day.values())


def conversation_last_messages(*, organization, conversation_ids) -> dict:
    """The newest message of each given conversation, by conversation id (for inbox previews)."""
    newest = (
        Message.objects.for_organization(organization)
        .filter(conversation_id__in=list(conversation_ids))
        .order_by("conversation_id", "-created_at", "-id")
        .distinct("conversation_id")
    )
    return {message.conversation_id: message for message in newest}


# --- privacy: one person's data (erasure and subject-access export) ----------------------

SUBJECT_KINDS = ("customer_id", "visitor_id", "email")
MAX_IDENTIFIER_LENGTH = 255


@dataclass(frozen=True)
class Subject:
    kind: str  # one of SUBJECT_KINDS
    value: str


def subject_from(params) -> Subject:
    """Exactly one of customer_id, visitor_id, email (a dict or a QueryDict)."""
    given = {kind: params.get(kind) for kind in SUBJECT_KINDS if params.get(kind) not in (None, "")}
    if len(given) != 1:
        message = "Give exactly one of customer_id, visitor_id or email."
        raise ValidationFailed(message, details={kind: [message] for kind in SUBJECT_KINDS})
    kind, value = next(iter(given.items()))
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_IDENTIFIER_LENGTH:
        message = f"Must be a non-empty string of at most {MAX_IDENTIFIER_LENGTH} characters."
        raise ValidationFailed(f"{kind}: {message}", details={kind: [message]})
    return Subject(kind=kind, value=value.strip())


def subject_contexts(*, organization, subject: Subject):
    contexts = UserContext.objects.for_organization(organization)
    if subject.kind == "customer_id":
        return contexts.filter(user_reference=subject.value)
    if subject.kind == "email":
        return contexts.filter(traits__email__iexact=subject.value)
    # A visitor id names one browser's visitor, not a customer: their sessions go, the
    # customer's context (if the visitor was verified) is erased by customer_id or email.
    return contexts.none()


def subject_conversations(*, organization, subject: Subject):
    """Every conversation and session of the person: by the identifier itself, by the user
    id a page claimed for them, and by their contexts."""
    conversations = Conversation.objects.for_organization(organization)
    references = list(
        subject_contexts(organization=organization, subject=subject).values_list("user_reference", flat=True)
    )
    if subject.kind == "customer_id":
        match = Q(customer_id=subject.value) | Q(metadata__unverified_user_id=subject.value)
    elif subject.kind == "visitor_id":
        match = Q(visitor_id=subject.value) | Q(metadata__client_visitor_id=subject.value)
    else:
        # The support desk's "email me the reply" address, or an email the page put in metadata.
        match = Q(metadata__email__iexact=subject.value) | Q(handoff_email__iexact=subject.value)
    if references:
        match |= Q(user_context__user_reference__in=references) | Q(customer_id__in=references)
    return conversations.filter(match)


def token_erased_exists(*, claims: dict, organization_ref: str) -> Exists:
    """Whether the person a widget token was issued to (its visitor, claim `vis`, or its
    verified customer, `uid`) was erased by a privacy erase at or after the token was issued
    (`iat`): an `Exists` over `ErasedVisitor` for the organization `organization_ref` names
    (an `OuterRef` path), so it joins the token's one query per request."""
    digests = [erased_visitor_digest("visitor", str(claims["vis"]))]
    if claims.get("uid"):
        digests.append(erased_visitor_digest("customer", str(claims["uid"])))
    issued = dt.datetime.fromtimestamp(int(claims["iat"]), tz=dt.UTC)
    return Exists(
        ErasedVisitor.objects.unscoped().filter(
            organization=OuterRef(organization_ref), digest__in=digests, erased_at__gte=issued
        )
    )


def token_erased(*, organization_id, claims: dict) -> bool:
    """`token_erased_exists` for one organization, on its own (a returning visitor's
    previous token, which is not a credential and is read once)."""
    return Organization.objects.filter(
        token_erased_exists(claims=claims, organization_ref="pk"), pk=organization_id
    ).exists()


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def privacy_export(*, organization, subject: Subject) -> dict:
    """Everything held about one person, as one JSON-ready document (subject-access request):
    their user contexts, sessions and conversations with every message, and their feedback."""
    contexts = subject_contexts(organization=organization, subject=subject)
    conversations = (
        subject_conversations(organization=organization, subject=subject)
        .select_related("assistant", "user_context")
        .prefetch_related("messages", "csat_ratings")
        .order_by("created_at")
    )
    threads, feedback, csat = [], [], []
    for conversation in conversations:
        messages = []
        for message in conversation.messages.all():
            messages.append(
                {
                    "id": str(message.pk),
                    "role": message.role,
                    "content": message.content,
                    "metadata": message.metadata,
                    "created_at": _iso(message.created_at),
                }
            )
            if message.tool_calls:  # the arguments an answer's actions were called with
                messages[-1]["tool_calls"] = message.tool_calls
            if message.tool_rounds:  # an unanswered question's action calls and their results
                messages[-1]["tool_rounds"] = message.tool_rounds
            if message.feedback is not None:
                feedback.append(
                    {
                        "message_id": str(message.pk),
                        "conversation_id": str(conversation.pk),
                        "rating": {1: "up", -1: "down"}.get(message.feedback, "neutral"),
                        "created_at": _iso(message.created_at),
                    }
                )
        thread = {
            "id": str(conversation.pk),
            "kind": conversation.kind,
            "assistant": conversation.assistant.name,
            "visitor_id": conversation.visitor_id,
            "customer_id": conversation.customer_id,
            "visitor_verified": conversation.visitor_verified,
            "title": conversation.title,
            "locale": conversation.locale,
            "metadata": conversation.metadata,
            "status": conversation.handoff_status,
            "created_at": _iso(conversation.created_at),
            "last_message_at": _iso(conversation.last_message_at),
            "messages": messages,
        }
        thread["handoff_email"] = conversation.handoff_email
        thread["handoff_reason"] = conversation.handoff_reason
        for rating in conversation.csat_ratings.all():
            csat.append(
                {
                    "conversation_id": str(conversation.pk),
                    "score": rating.score,
                    "comment": rating.comment,
                    "created_at": _iso(rating.created_at),
                }
            )
        threads.append(thread)
    return {
        "subject": {subject.kind: subject.value},
        "organization": {"id": str(organization.pk), "name": organization.name},
        "exported_at": timezone.now().isoformat(),
        "contexts": [
            {
                "id": str(context.pk),
                "user_reference": context.user_reference,
                "traits": context.traits,
                "created_at": _iso(context.created_at),
                "updated_at": _iso(context.updated_at),
            }
            for context in contexts.order_by("created_at")
        ],
        "sessions": [thread for thread in threads if thread["kind"] == Conversation.Kind.SESSION],
        "conversations": [thread for thread in threads if thread["kind"] == Conversation.Kind.CONVERSATION],
        "feedback": feedback,
        "csat": csat,
    }


# --- the knowledge page's retrieval tester ----------------------------------------------------


@dataclass(frozen=True)
class RetrievalCheck:
    answers: bool  # some passage is relevant enough to answer from
    passages: list[dict] = field(default_factory=list)  # [{source…, relevant}], best first


def retrieval_check(*, organization, assistant, question: str, limit: int = 5) -> RetrievalCheck:
    """What the assistant would do with `question`: the passages retrieval finds, scored by
    the same relevance gate answers use, so the page says "answers from these" or "says it
    does not know and offers a person" instead of showing raw rank-fusion scores. (It lives
    here because `knowledge` must not depend on `chat`.)"""
    from django.conf import settings

    from chat import grounding

    candidates = grounding.knowledge_search(organization=organization, assistant=assistant, query=question)
    question = grounding.searched_question(organization=organization, question=question)
    scored = grounding.candidates_score(question=question, candidates=candidates, organization=organization)
    threshold = settings.CHAT_RELEVANCE_THRESHOLD
    passages = [dict(item.source, relevant=item.relevance >= threshold) for item in scored[:limit]]
    return RetrievalCheck(answers=any(passage["relevant"] for passage in passages), passages=passages)


def knowledge_language_hint(*, organization, answer: Message | None) -> str:
    """The language a question found nothing in because the organization's knowledge search
    understands English only ("" otherwise), for the playground to say what to switch: a new
    user's Spanish question got "Lo siento, no tengo información" from English knowledge that
    answers it, with nothing saying Settings › Knowledge › Many languages would find it."""
    from knowledge import analysis, embeddings

    if answer is None or answer.role != Message.Role.ASSISTANT or answer.answered:
        return ""
    if (answer.metadata or {}).get("small_talk"):
        return ""
    if embeddings.MULTILINGUAL in (organization.knowledge_embedder, organization.knowledge_embedder_next):
        return ""
    question = (
        Message.objects.for_organization(organization)
        .filter(pk=answer.in_reply_to_id)
        .values_list("content", flat=True)
        .first()
    )
    language = analysis.language_detect(question or "", default="")
    if not language or language == "en":
        return ""
    return prompts.LANGUAGE_NAMES.get(language, language)
