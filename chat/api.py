"""Sessions, conversations and their messages (`/api/v1/sessions`, `/api/v1/conversations`).

Views authenticate, resolve the organization, validate and serialize; the chat services
do the rest. With `Accept: text/event-stream` a message POST streams the answer as
server-sent events: `event: token` (`{"content": "…"}`) for each piece of text, then
`event: done` with the stored message, or `event: error` with the error shape.
"""

from __future__ import annotations

import itertools
import json
import logging
import uuid

from django.conf import settings
from django.db import transaction
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response

from assistants import selectors as assistant_selectors
from chat import live, selectors, services
from chat.models import Conversation, Message
from chat.serializers import (
    ConversationCreateSerializer,
    ConversationSerializer,
    CsatCreateSerializer,
    CsatSerializer,
    FeedbackSerializer,
    HandoffRequestSerializer,
    MessageCreateSerializer,
    MessageSerializer,
    OperatorReplySerializer,
    SessionCreateSerializer,
    SessionSerializer,
    message_data,
    message_serializer_for,
)
from chat.services import privacy as privacy_services
from core.api.envelope import application_error_parts, error_body
from core.errors import ApplicationError, TooManyConcurrent, ValidationFailed
from core.inbound_socket import client_gone_check
from organizations import budgets
from organizations import selectors as organization_selectors
from organizations.api_base import OrganizationGenericAPIView

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "HTTP_IDEMPOTENCY_KEY"
# The sessions API is called by the visitor's browser on a customer's site: its views declare
# `cors = VISITOR_CORS` (widget.middleware reads it: this is its CORS_WIDGET_VISITOR, written
# out because this app sits below the widget app).
VISITOR_CORS = "widget-visitor"


def _wants_stream(request) -> bool:
    return "text/event-stream" in request.META.get("HTTP_ACCEPT", "")


def idempotency_key(request) -> str:
    key = request.META.get(IDEMPOTENCY_HEADER, "").strip()
    if len(key) > 255:
        raise ValidationFailed("Idempotency-Key must be at most 255 characters.")
    return key


def _sse(event: str, data) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


def stream_response(
    events, *, serializer: type[MessageSerializer] = MessageSerializer
) -> StreamingHttpResponse:
    """Turns a service's event iterator into an SSE response (the `done` message in the shape
    of `serializer`: a visitor's or an API key's).

    The first event is pulled before the response exists, so an error before the first
    token (provider down, validation) is still an ordinary JSON error with its status.
    """
    first = next(events)

    def body():
        try:
            for kind, payload in itertools.chain([first], events):
                if kind == "token":
                    yield _sse("token", {"content": payload})
                else:
                    yield _sse("done", message_data(payload, serializer))
        except ApplicationError as error:
            yield _sse("error", application_error_parts(error)[1])
        except Exception:
            logger.exception("answer stream failed")
            yield _sse("error", error_body(502, "The answer stream failed; please retry."))
        finally:
            events.close()

    response = StreamingHttpResponse(body(), content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache, no-transform"
    response["X-Accel-Buffering"] = "no"
    return response


class StreamingNegotiationMixin:
    """Accepts `Accept: text/event-stream` on views whose errors are still JSON."""

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)


def _caller_verified(request, conversation: Conversation) -> bool:
    """Whether this caller may use actions marked `requires_verified_visitor`: an API key (the
    organization's own server), or a widget visitor whose identity that server proved."""
    credential = request.auth
    if not credential.is_widget:
        return True
    return bool(credential.verified_user_id) and conversation.visitor_verified


def _message_post_response(
    request, conversation: Conversation, serializer
) -> Response | StreamingHttpResponse:
    arguments = {
        "conversation": conversation,
        "content": serializer.validated_data["content"],
        "metadata": serializer.validated_data.get("metadata") or {},
        "idempotency_key": idempotency_key(request),
        "verified": _caller_verified(request, conversation),
    }
    serializer_class = message_serializer_for(request.auth)
    if _wants_stream(request):
        return stream_response(services.message_post_stream(**arguments), serializer=serializer_class)
    message = services.message_post(**arguments)
    # While a person is waited for or has the conversation, `data` is the stored user message.
    return Response(message_data(message, serializer_class), status=status.HTTP_201_CREATED)


MESSAGE_LIST_PARAMETERS = [
    OpenApiParameter("after", str, description="Only messages newer than this message id"),
    OpenApiParameter("page", int),
    OpenApiParameter("page_size", int),
]


def _last_event_id(request):
    """Where a live stream resumes: the `Last-Event-ID` header (or `?after=`), a message id."""
    raw = request.META.get("HTTP_LAST_EVENT_ID", "").strip() or request.query_params.get("after", "")
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ValidationFailed(
            "Last-Event-ID must be a message id.", details={"Last-Event-ID": ["Must be a UUID."]}
        ) from None


def _live_frame(event: live.LiveEvent, serializer: type[MessageSerializer]) -> bytes:
    if event.kind == "ping":
        return b": ping\n\n"
    if event.kind == "message":
        data = json.dumps(message_data(event.message, serializer), default=str)
        return f"id: {event.message.pk}\nevent: message\ndata: {data}\n\n".encode()
    if event.kind == "status":
        return _sse("status", {"handoff_status": event.status})
    return _sse(event.kind, {"role": "operator"})


class _StreamBody:
    """A stream's frames, and what to let go when the server closes the response: Django calls
    `close()` whether or not the frames were ever read (a client gone before the first one)."""

    def __init__(self, frames, on_close) -> None:
        self.frames, self.on_close = frames, on_close

    def __iter__(self):
        return self.frames

    def close(self) -> None:
        try:
            self.frames.close()
        finally:
            if self.on_close is not None:
                self.on_close()


def live_response(events, *, serializer: type[MessageSerializer], on_close=None) -> StreamingHttpResponse:
    def body():
        # The client waits this long before reconnecting after the stream ends or drops.
        yield b"retry: 2000\n\n"
        try:
            for event in events:
                yield _live_frame(event, serializer)
        finally:
            events.close()

    response = StreamingHttpResponse(
        _StreamBody(body(), on_close), content_type="text/event-stream; charset=utf-8"
    )
    response["Cache-Control"] = "no-cache, no-transform"
    response["X-Accel-Buffering"] = "no"
    return response


LIVE_STREAMS_RETRY_AFTER_SECONDS = 30
LIVE_EVENTS_DESCRIPTION = (
    "Server-sent events of this conversation, held open for up to LIVE_STREAM_SECONDS "
    '(default 300): `status` (`{"handoff_status"}`) first, then each new `message` (its '
    "`id:` is the message id), operator `typing`, status changes, and a `: ping` comment every "
    "15 s. Reconnect with `Last-Event-ID` (or `?after=`) to resume after the last message seen. "
    "A widget visitor holds at most LIVE_STREAMS_PER_VISITOR (default 10) open streams per web "
    "process, and the widget visitors of one client address LIVE_STREAMS_PER_IP (40); one more "
    "is a 429 with `Retry-After`."
)


# One server-sent event as OpenAPI 3.0 describes a `text/event-stream` body: its fields,
# with `data` a JSON document in text.
LIVE_EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "event": {"type": "string"},
        "data": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
}
LIVE_EVENTS_RESPONSE = OpenApiResponse(LIVE_EVENT_SCHEMA, description="An SSE stream")


def live_events_schema(operation_id: str):
    return extend_schema(
        operation_id=operation_id,
        description=LIVE_EVENTS_DESCRIPTION,
        parameters=[
            OpenApiParameter("Last-Event-ID", str, OpenApiParameter.HEADER),
            OpenApiParameter("after", str),
        ],
        responses={(200, "text/event-stream"): LIVE_EVENTS_RESPONSE},
    )


class _ConversationMessagesBase(StreamingNegotiationMixin, OrganizationGenericAPIView):
    model = Message
    serializer_class = MessageSerializer
    kind = Conversation.Kind.SESSION

    def conversation(self, pk) -> Conversation:
        visitor = self.credential.visitor_id if self.credential.is_widget else None
        return selectors.conversation_get(
            organization=self.organization, conversation_id=pk, kind=self.kind, visitor_id=visitor
        )

    def seen(self, conversation: Conversation) -> None:
        if self.credential.is_widget:  # the visitor's own widget, not a backend with a key
            services.visitor_seen(conversation=conversation)

    def list_messages(self, request, pk):
        conversation = self.conversation(pk)
        self.seen(conversation)
        after = request.query_params.get("after")
        if after:
            try:
                after = uuid.UUID(after)
            except ValueError:
                raise ValidationFailed(
                    "after must be a message id.", details={"after": ["Must be a UUID."]}
                ) from None
        page = self.paginate_queryset(selectors.message_list(conversation=conversation, after=after))
        serializer_class = message_serializer_for(self.credential)
        return self.get_paginated_response(serializer_class(page, many=True).data)

    def live_events(self, request, pk):
        conversation = self.conversation(pk)
        self.seen(conversation)
        after = _last_event_id(request)
        release = None
        if self.credential.is_widget:
            holders = [
                (
                    f"visitor:{self.organization.pk}:{self.credential.visitor_id}",
                    settings.LIVE_STREAMS_PER_VISITOR,
                ),
                (f"address:{budgets.client_ip(request)}", settings.LIVE_STREAMS_PER_IP),
            ]
            release = live.stream_admit(holders=holders)
            if isinstance(release, int):
                who = ("This visitor", "This address")[release]
                raise TooManyConcurrent(
                    f"{who} already has {holders[release][1]} live streams open; close one or retry shortly.",
                    details={"retry_after": LIVE_STREAMS_RETRY_AFTER_SECONDS},
                )
        events = live.conversation_events(
            conversation=conversation,
            after=after,
            client_gone=client_gone_check(request),
            credential_valid=self.credential.still_valid,
        )
        return live_response(events, serializer=message_serializer_for(self.credential), on_close=release)

    def post_message(self, request, pk):
        conversation = self.conversation(pk)
        self.seen(conversation)
        serializer = MessageCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return _message_post_response(request, conversation, serializer)


# --- sessions ----------------------------------------------------------------------------


class SessionListCreateApi(OrganizationGenericAPIView):
    model = Conversation
    serializer_class = SessionSerializer
    allow_widget_token = True
    cors = VISITOR_CORS

    @extend_schema(
        operation_id="sessions_list",
        parameters=[OpenApiParameter("visitor_id", str), OpenApiParameter("assistant_id", str)],
        responses=SessionSerializer(many=True),
    )
    def get(self, request):
        queryset = selectors.conversation_list(organization=self.organization, kind=Conversation.Kind.SESSION)
        if self.credential.is_widget:
            # A verified customer sees their own sessions from every device; an anonymous
            # visitor's token lists nothing.
            if not self.credential.verified_user_id:
                raise exceptions.PermissionDenied("Only a verified visitor's widget token can list sessions.")
            queryset = queryset.filter(visitor_id=self.credential.visitor_id, visitor_verified=True)
        visitor_id = request.query_params.get("visitor_id")
        if visitor_id:
            queryset = queryset.filter(visitor_id=visitor_id)
        assistant_id = request.query_params.get("assistant_id")
        if assistant_id:
            assistant = assistant_selectors.assistant_get(
                organization=self.organization, assistant_id=assistant_id
            )
            queryset = queryset.filter(assistant=assistant)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(SessionSerializer(page, many=True).data)

    @extend_schema(
        operation_id="sessions_create", request=SessionCreateSerializer, responses={201: SessionSerializer}
    )
    def post(self, request):
        serializer = SessionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        metadata = dict(data.get("metadata") or {})
        widget = None
        visitor_id = data.get("visitor_id", "")
        if self.credential.is_widget:
            # A widget visitor is who the token says; what the page claims is kept as metadata.
            if visitor_id and visitor_id != self.credential.visitor_id:
                metadata.setdefault("client_visitor_id", visitor_id)
            visitor_id = self.credential.visitor_id
            claimed_user_id = (self.credential.claims or {}).get("cuid")
            if claimed_user_id:  # said by the page, proven by nobody: never linked to a customer
                metadata["unverified_user_id"] = claimed_user_id
            # The token's widget (switched on, of this organization), loaded with the credential.
            widget = self.credential.widget
        assistant_id = data.get("assistant_id") or (widget.assistant_id if widget else None)
        if assistant_id is None:
            raise ValidationFailed(
                "assistant_id is required.", details={"assistant_id": ["This field is required."]}
            )
        if widget is not None and assistant_id != widget.assistant_id:
            raise exceptions.PermissionDenied("This widget token is for another assistant.")
        assistant = assistant_selectors.assistant_get(
            organization=self.organization, assistant_id=assistant_id
        )
        session = services.session_create(
            organization=self.organization,
            assistant=assistant,
            visitor_id=visitor_id,
            locale=data.get("locale", ""),
            metadata=metadata,
            widget=widget,
            verified_user_id=self.credential.verified_user_id,
        )
        return Response(SessionSerializer(session).data, status=status.HTTP_201_CREATED)


class SessionDetailApi(OrganizationGenericAPIView):
    model = Conversation
    serializer_class = SessionSerializer
    allow_widget_token = True
    widget_token_methods = ("GET", "HEAD", "OPTIONS")  # only an API key deletes a session
    cors = VISITOR_CORS

    @extend_schema(operation_id="sessions_retrieve", responses=SessionSerializer)
    def get(self, request, pk):
        visitor = self.credential.visitor_id if self.credential.is_widget else None
        session = selectors.conversation_get(
            organization=self.organization,
            conversation_id=pk,
            kind=Conversation.Kind.SESSION,
            visitor_id=visitor,
        )
        return Response(SessionSerializer(session).data)

    @extend_schema(operation_id="sessions_destroy", responses={204: None})
    def delete(self, request, pk):
        session = selectors.conversation_get(
            organization=self.organization, conversation_id=pk, kind=Conversation.Kind.SESSION
        )
        privacy_services.conversation_delete(conversation=session)
        self.audit("session.deleted", target_type="conversation", changes={"id": str(pk)})
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionMessagesApi(_ConversationMessagesBase):
    allow_widget_token = True
    cors = VISITOR_CORS
    visitor_message_methods = frozenset({"POST"})  # a visitor's send: the message budgets
    kind = Conversation.Kind.SESSION

    @extend_schema(
        operation_id="sessions_messages_list",
        parameters=MESSAGE_LIST_PARAMETERS,
        responses=MessageSerializer(many=True),
    )
    def get(self, request, pk):
        return self.list_messages(request, pk)

    @extend_schema(
        operation_id="sessions_messages_create",
        request=MessageCreateSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        responses={
            201: OpenApiResponse(
                MessageSerializer,
                description="The assistant's answer; or, while a person is waited for or has the "
                'conversation, the stored user message (`role: "user"`)',
            ),
        },
    )
    def post(self, request, pk):
        return self.post_message(request, pk)


class SessionEventsApi(_ConversationMessagesBase):
    allow_widget_token = True
    cors = VISITOR_CORS
    kind = Conversation.Kind.SESSION

    @live_events_schema("sessions_events")
    def get(self, request, pk):
        return self.live_events(request, pk)


class _FeedbackBase(OrganizationGenericAPIView):
    model = Message
    serializer_class = FeedbackSerializer
    kind = Conversation.Kind.SESSION

    def post(self, request, pk, message_id):
        visitor = self.credential.visitor_id if self.credential.is_widget else None
        conversation = selectors.conversation_get(
            organization=self.organization, conversation_id=pk, kind=self.kind, visitor_id=visitor
        )
        message = selectors.message_get(conversation=conversation, message_id=message_id)
        serializer = FeedbackSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        message = services.message_feedback_set(message=message, rating=serializer.validated_data["rating"])
        return Response(message_data(message, message_serializer_for(self.credential)))


class SessionMessageFeedbackApi(_FeedbackBase):
    allow_widget_token = True
    cors = VISITOR_CORS
    kind = Conversation.Kind.SESSION

    @extend_schema(
        operation_id="sessions_messages_feedback", request=FeedbackSerializer, responses=MessageSerializer
    )
    def post(self, request, pk, message_id):
        return super().post(request, pk, message_id)


class _HandoffBase(OrganizationGenericAPIView):
    """`POST …/handoff`: ask for a person (idempotent) and `POST …/csat`: rate a resolution."""

    model = Conversation
    kind = Conversation.Kind.SESSION
    output_serializer = SessionSerializer

    def conversation(self, pk) -> Conversation:
        visitor = self.credential.visitor_id if self.credential.is_widget else None
        return selectors.conversation_get(
            organization=self.organization, conversation_id=pk, kind=self.kind, visitor_id=visitor
        )

    def request_handoff(self, request, pk):
        conversation = self.conversation(pk)
        serializer = HandoffRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # A widget token is the visitor asking; an API key is the organization's backend.
        trigger = (
            Conversation.HandoffTrigger.ASKED
            if self.credential.is_widget
            else Conversation.HandoffTrigger.BACKEND
        )
        conversation, _ = services.handoff_request(
            conversation=conversation,
            trigger=trigger,
            reason=serializer.validated_data.get("reason", ""),
            email=serializer.validated_data.get("email", ""),
        )
        hours = organization_selectors.business_hours_status(organization=self.organization)
        return Response(
            {
                **self.output_serializer(conversation).data,
                # Outside business hours the widget says when the team is back and asks for an email.
                "team_available": hours.open,
                "team_back_at": hours.next_open.isoformat() if hours.next_open else None,
            }
        )

    def rate(self, request, pk):
        conversation = self.conversation(pk)
        serializer = CsatCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rating = services.csat_create(
            conversation=conversation,
            score=serializer.validated_data["score"],
            comment=serializer.validated_data.get("comment", ""),
        )
        return Response(CsatSerializer(rating).data, status=status.HTTP_201_CREATED)


HANDOFF_DESCRIPTION = (
    "Ask for a person: `handoff_status` becomes `waiting` (from `bot`, or `resolved`, which "
    "reopens). Idempotent: while `waiting` or `human` nothing changes and nobody is notified "
    "again. `email` (optional) is where an offline visitor wants the reply; without it a "
    "verified visitor's proven address (identity token `email`) is used. With an API key the "
    "cause (`handoff_trigger`) is `backend`, with the visitor's widget token `asked`."
)
CSAT_DESCRIPTION = (
    "Rate the latest resolution 1-5 with an optional comment: only when `resolved` (409 "
    "otherwise), once per resolution (409 after that)."
)


class _DeskBase(_HandoffBase):
    """The support desk from your own backend (a helpdesk that took the handoff): reply as the
    team, resolve, hand back to the assistant, reopen. API keys only; the same services and
    audit events as the inbox. The person acting is the key's maker while still a member
    (`author` of the reply, `resolved_by`), else nobody (a key made by a command)."""

    def acting_user(self):
        api_key = self.credential.api_key
        if api_key.created_by_id and organization_selectors.api_key_creator_is_member(api_key=api_key):
            return api_key.created_by
        return None

    def reply(self, request, pk):
        conversation = self.conversation(pk)
        serializer = OperatorReplySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        before = services.desk_state(conversation)
        with transaction.atomic():  # the take-over, the reply and the audit event, or none of them
            message = services.operator_reply_post(
                conversation=conversation,
                user=self.acting_user(),
                content=serializer.validated_data["content"],
            )
            if services.desk_state(conversation) != before:  # replying took it over from the assistant
                self.audit("conversation.taken_over", target=conversation)
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)

    def change(self, request, pk, action: str):
        """Idempotent: asking for the state a conversation is already in answers 200 with it, and
        records no audit event (nothing changed)."""
        conversation = self.conversation(pk)
        before = services.desk_state(conversation)
        if action == "resolve":
            conversation = services.conversation_resolve(conversation=conversation, user=self.acting_user())
        elif action == "hand-back":
            conversation = services.handoff_hand_back(conversation=conversation)
        else:
            conversation = services.conversation_reopen(conversation=conversation)
        if services.desk_state(conversation) != before:
            audit = {"resolve": "resolved", "hand-back": "handed_back", "reopen": "reopened"}[action]
            self.audit(f"conversation.{audit}", target=conversation)
        return Response(self.output_serializer(conversation).data)


DESK_DESCRIPTIONS = {
    "reply": "Reply as your team (`role: operator`): the conversation becomes `human` (the "
    "assistant stays quiet) and the reply reaches the visitor's open widget live. API keys only.",
    "resolve": "Resolve: `handoff_status` becomes `resolved`, `conversation.resolved` is sent and "
    "the visitor may rate it (`csat`). API keys only.",
    "hand-back": "Hand back to the assistant: `handoff_status` becomes `bot`. API keys only.",
    "reopen": "Reopen: back in the waiting queue (`waiting`). API keys only.",
}


class SessionHandoffApi(_HandoffBase):
    allow_widget_token = True
    cors = VISITOR_CORS
    serializer_class = HandoffRequestSerializer

    @extend_schema(
        operation_id="sessions_handoff",
        description=HANDOFF_DESCRIPTION,
        request=HandoffRequestSerializer,
        responses=SessionSerializer,
    )
    def post(self, request, pk):
        return self.request_handoff(request, pk)


class SessionCsatApi(_HandoffBase):
    allow_widget_token = True
    cors = VISITOR_CORS
    serializer_class = CsatCreateSerializer

    @extend_schema(
        operation_id="sessions_csat",
        description=CSAT_DESCRIPTION,
        request=CsatCreateSerializer,
        responses={201: CsatSerializer},
    )
    def post(self, request, pk):
        return self.rate(request, pk)


# --- conversations -------------------------------------------------------------------------


class ConversationListCreateApi(OrganizationGenericAPIView):
    model = Conversation
    serializer_class = ConversationSerializer

    @extend_schema(
        operation_id="conversations_list",
        parameters=[OpenApiParameter("customer_id", str), OpenApiParameter("assistant_id", str)],
        responses=ConversationSerializer(many=True),
    )
    def get(self, request):
        assistant = None
        if request.query_params.get("assistant_id"):
            assistant = assistant_selectors.assistant_get(
                organization=self.organization, assistant_id=request.query_params["assistant_id"]
            )
        queryset = selectors.conversation_list(
            organization=self.organization,
            kind=Conversation.Kind.CONVERSATION,
            customer_id=request.query_params.get("customer_id") or None,
            assistant=assistant,
        )
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(ConversationSerializer(page, many=True).data)

    @extend_schema(
        operation_id="conversations_create",
        request=ConversationCreateSerializer,
        responses={201: ConversationSerializer},
    )
    def post(self, request):
        serializer = ConversationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        assistant = assistant_selectors.assistant_get(
            organization=self.organization, assistant_id=data["assistant_id"]
        )
        user_context = None
        if data.get("user_context_id"):
            user_context = assistant_selectors.user_context_resolve(
                organization=self.organization, reference=data["user_context_id"]
            )
            if user_context is None:
                raise ValidationFailed(
                    "user_context_id does not match any context.",
                    details={"user_context_id": ["No context with this id or user_reference."]},
                )
        conversation = services.conversation_create(
            organization=self.organization,
            assistant=assistant,
            customer_id=data.get("customer_id", ""),
            user_context=user_context,
            title=data.get("title", ""),
            locale=data.get("locale", ""),
            metadata=data.get("metadata") or {},
        )
        return Response(ConversationSerializer(conversation).data, status=status.HTTP_201_CREATED)


class ConversationDetailApi(OrganizationGenericAPIView):
    model = Conversation
    serializer_class = ConversationSerializer

    @extend_schema(operation_id="conversations_retrieve", responses=ConversationSerializer)
    def get(self, request, pk):
        conversation = selectors.conversation_get(
            organization=self.organization, conversation_id=pk, kind=Conversation.Kind.CONVERSATION
        )
        return Response(ConversationSerializer(conversation).data)

    @extend_schema(operation_id="conversations_destroy", responses={204: None})
    def delete(self, request, pk):
        conversation = selectors.conversation_get(
            organization=self.organization, conversation_id=pk, kind=Conversation.Kind.CONVERSATION
        )
        privacy_services.conversation_delete(conversation=conversation)
        self.audit("conversation.deleted", target_type="conversation", changes={"id": str(pk)})
        return Response(status=status.HTTP_204_NO_CONTENT)


class ConversationMessagesApi(_ConversationMessagesBase):
    kind = Conversation.Kind.CONVERSATION

    @extend_schema(
        operation_id="conversations_messages_list",
        parameters=MESSAGE_LIST_PARAMETERS,
        responses=MessageSerializer(many=True),
    )
    def get(self, request, pk):
        return self.list_messages(request, pk)

    @extend_schema(
        operation_id="conversations_messages_create",
        request=MessageCreateSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        responses={
            201: OpenApiResponse(
                MessageSerializer,
                description="The assistant's answer; or, while a person is waited for or has the "
                'conversation, the stored user message (`role: "user"`)',
            ),
        },
    )
    def post(self, request, pk):
        return self.post_message(request, pk)


class ConversationEventsApi(_ConversationMessagesBase):
    kind = Conversation.Kind.CONVERSATION

    @live_events_schema("conversations_events")
    def get(self, request, pk):
        return self.live_events(request, pk)


class ConversationMessageFeedbackApi(_FeedbackBase):
    kind = Conversation.Kind.CONVERSATION

    @extend_schema(
        operation_id="conversations_messages_feedback",
        request=FeedbackSerializer,
        responses=MessageSerializer,
    )
    def post(self, request, pk, message_id):
        return super().post(request, pk, message_id)


class ConversationHandoffApi(_HandoffBase):
    kind = Conversation.Kind.CONVERSATION
    output_serializer = ConversationSerializer
    serializer_class = HandoffRequestSerializer

    @extend_schema(
        operation_id="conversations_handoff",
        description=HANDOFF_DESCRIPTION,
        request=HandoffRequestSerializer,
        responses=ConversationSerializer,
    )
    def post(self, request, pk):
        return self.request_handoff(request, pk)


class ConversationCsatApi(_HandoffBase):
    kind = Conversation.Kind.CONVERSATION
    serializer_class = CsatCreateSerializer

    @extend_schema(
        operation_id="conversations_csat",
        description=CSAT_DESCRIPTION,
        request=CsatCreateSerializer,
        responses={201: CsatSerializer},
    )
    def post(self, request, pk):
        return self.rate(request, pk)


# --- the support desk from your backend ------------------------------------------------


class SessionReplyApi(_DeskBase):
    kind = Conversation.Kind.SESSION
    output_serializer = SessionSerializer
    serializer_class = OperatorReplySerializer

    @extend_schema(
        operation_id="sessions_reply",
        description=DESK_DESCRIPTIONS["reply"],
        request=OperatorReplySerializer,
        responses={201: MessageSerializer},
    )
    def post(self, request, pk):
        return self.reply(request, pk)


class SessionResolveApi(_DeskBase):
    kind = Conversation.Kind.SESSION
    output_serializer = SessionSerializer
    serializer_class = SessionSerializer  # what OPTIONS describes: no body, the answer

    @extend_schema(
        operation_id="sessions_resolve",
        description=DESK_DESCRIPTIONS["resolve"],
        request=None,
        responses=SessionSerializer,
    )
    def post(self, request, pk):
        return self.change(request, pk, "resolve")


class SessionHandBackApi(_DeskBase):
    kind = Conversation.Kind.SESSION
    output_serializer = SessionSerializer
    serializer_class = SessionSerializer  # what OPTIONS describes: no body, the answer

    @extend_schema(
        operation_id="sessions_hand_back",
        description=DESK_DESCRIPTIONS["hand-back"],
        request=None,
        responses=SessionSerializer,
    )
    def post(self, request, pk):
        return self.change(request, pk, "hand-back")


class SessionReopenApi(_DeskBase):
    kind = Conversation.Kind.SESSION
    output_serializer = SessionSerializer
    serializer_class = SessionSerializer  # what OPTIONS describes: no body, the answer

    @extend_schema(
        operation_id="sessions_reopen",
        description=DESK_DESCRIPTIONS["reopen"],
        request=None,
        responses=SessionSerializer,
    )
    def post(self, request, pk):
        return self.change(request, pk, "reopen")


class ConversationReplyApi(_DeskBase):
    kind = Conversation.Kind.CONVERSATION
    output_serializer = ConversationSerializer
    serializer_class = OperatorReplySerializer

    @extend_schema(
        operation_id="conversations_reply",
        description=DESK_DESCRIPTIONS["reply"],
        request=OperatorReplySerializer,
        responses={201: MessageSerializer},
    )
    def post(self, request, pk):
        return self.reply(request, pk)


class ConversationResolveApi(_DeskBase):
    kind = Conversation.Kind.CONVERSATION
    output_serializer = ConversationSerializer
    serializer_class = ConversationSerializer  # what OPTIONS describes: no body, the answer

    @extend_schema(
        operation_id="conversations_resolve",
        description=DESK_DESCRIPTIONS["resolve"],
        request=None,
        responses=ConversationSerializer,
    )
    def post(self, request, pk):
        return self.change(request, pk, "resolve")


class ConversationHandBackApi(_DeskBase):
    kind = Conversation.Kind.CONVERSATION
    output_serializer = ConversationSerializer
    serializer_class = ConversationSerializer  # what OPTIONS describes: no body, the answer

    @extend_schema(
        operation_id="conversations_hand_back",
        description=DESK_DESCRIPTIONS["hand-back"],
        request=None,
        responses=ConversationSerializer,
    )
    def post(self, request, pk):
        return self.change(request, pk, "hand-back")


class ConversationReopenApi(_DeskBase):
    kind = Conversation.Kind.CONVERSATION
    output_serializer = ConversationSerializer
    serializer_class = ConversationSerializer  # what OPTIONS describes: no body, the answer

    @extend_schema(
        operation_id="conversations_reopen",
        description=DESK_DESCRIPTIONS["reopen"],
        request=None,
        responses=ConversationSerializer,
    )
    def post(self, request, pk):
        return self.change(request, pk, "reopen")
