"""The widget chat API: `/api/widget/chat`, `/api/widget/config` and `/api/widget/scrape`.

What a customer's server calls with a bearer API key (SPEC "Endpoints", the seed-000
reference): camelCase bodies at the top level, not enveloped (errors are, like everywhere).
Routed under the API (`supportai/urls.py`), beside `/api/v1/`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from chat import services as chat_services
from chat.api import idempotency_key
from chat.models import Message
from core.api.renderers import PlainJSONRenderer
from core.errors import ValidationFailed
from organizations.api_base import OrganizationAPIView
from widget import selectors
from widget.serializers import (
    WidgetChatConfigSerializer,
    WidgetChatRequestSerializer,
    WidgetChatResponseSerializer,
    WidgetChatScrapeRequestSerializer,
    WidgetChatScrapeResponseSerializer,
)

# The widget chat API has no field for "a human will answer"; its `message` says so.
HANDOFF_NOTICE = "Thanks, a member of our team has your message and will reply here shortly."


def iso_millis(moment: datetime) -> str:
    """`2023-03-29T14:30:00.000Z`: UTC, milliseconds, as the widget chat API writes times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class WidgetChatApi(OrganizationAPIView):
    """`POST /api/widget/chat`: bearer API key, answers `{id, message, timestamp}`."""

    renderer_classes = [PlainJSONRenderer]
    serializer_class = WidgetChatRequestSerializer

    @extend_schema(
        operation_id="widget_chat",
        request=WidgetChatRequestSerializer,
        responses={200: WidgetChatResponseSerializer},
    )
    def post(self, request):
        serializer = WidgetChatRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        widget = selectors.widget_get(organization=self.organization, widget_id=data["widgetId"])
        conversation = chat_services.widget_conversation_get_or_create(
            organization=self.organization, widget=widget, session_id=data.get("sessionId") or ""
        )
        message = chat_services.message_post(
            conversation=conversation,
            content=data["message"],
            context=data.get("context") or None,
            idempotency_key=idempotency_key(request),
            verified=True,  # seed 000's chat is called with the organization's API key
        )
        created = message.created_at
        return Response(
            {
                "id": f"resp_{int(created.timestamp() * 1000)}",
                "message": message.content if message.role != Message.Role.USER else HANDOFF_NOTICE,
                "timestamp": iso_millis(created),
            }
        )


def _config(config: dict) -> dict:
    return {
        "widgetId": config["id"],
        "assistantId": config["assistant_id"],
        "title": config["title"],
        "greeting": config["greeting"],
        "placeholder": config["placeholder"],
        "primaryColor": config["primary_color"],
        "position": config["position"],
        "launcherLabel": config["launcher_label"],
        "suggestedQuestions": config["suggested_questions"],
        "instance": config["instance"],
        "showSources": config["show_sources"],
        "collectFeedback": config["collect_feedback"],
        "autoOpen": config["auto_open"],
        "humanHandoff": config["human_handoff"],
        "isActive": config["is_active"],
    }


class WidgetChatConfigApi(OrganizationAPIView):
    """`GET /api/widget/config?widgetId=…`: the widget's public configuration, camelCase."""

    renderer_classes = [PlainJSONRenderer]
    serializer_class = WidgetChatConfigSerializer

    @extend_schema(
        operation_id="widget_chat_config",
        parameters=[OpenApiParameter("widgetId", OpenApiTypes.UUID, OpenApiParameter.QUERY, required=True)],
        responses=WidgetChatConfigSerializer,
    )
    def get(self, request):
        widget_id = (request.query_params.get("widgetId") or "").strip()
        if not widget_id:
            raise ValidationFailed(
                "Missing required parameter: widgetId.", details={"widgetId": ["Required."]}
            )
        widget = selectors.widget_get(organization=self.organization, widget_id=widget_id)
        return Response(_config(selectors.widget_public_config(widget=widget)))


class WidgetChatScrapeApi(OrganizationAPIView):
    """`POST /api/widget/scrape {"url", "widgetId"?}`.

    Fetches the page through the fetcher (core.fetcher: SSRF rules apply); with `widgetId` the
    page is also added to that widget's assistant's knowledge base.
    """

    renderer_classes = [PlainJSONRenderer]
    serializer_class = WidgetChatScrapeResponseSerializer

    @extend_schema(
        operation_id="widget_chat_scrape",
        request=WidgetChatScrapeRequestSerializer,
        responses=WidgetChatScrapeResponseSerializer,
    )
    def post(self, request):
        from knowledge import services as knowledge_services

        serializer = WidgetChatScrapeRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        url = serializer.validated_data["url"].strip()
        widget = None
        widget_id = serializer.validated_data.get("widgetId")
        if widget_id:
            widget = selectors.widget_get(organization=self.organization, widget_id=widget_id)
        page = knowledge_services.page_scrape(organization=self.organization, url=url)
        page_url, title = _field(page, "url") or url, _field(page, "title") or ""
        if widget is not None:
            try:
                knowledge_services.url_source_create(
                    organization=self.organization,
                    url=page_url,
                    title=title or page_url,
                    assistant=widget.assistant,
                )
            except knowledge_services.SourceExists:
                pass  # the page is already in that assistant's knowledge (and re-synced there)
        scraped_at = _field(page, "scraped_at")
        return Response(
            {
                "url": page_url,
                "title": title,
                "content": _field(page, "content") or "",
                "scrapedAt": iso_millis(scraped_at) if isinstance(scraped_at, datetime) else str(scraped_at),
            }
        )


def _field(page, name: str):
    return page.get(name) if isinstance(page, dict) else getattr(page, name, None)
