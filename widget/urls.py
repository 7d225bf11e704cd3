from django.urls import path

from core.api.routes import api_path
from widget import api, chat_api, views

api_v1 = [
    *api_path("auth/widget-token", api.WidgetTokenApi.as_view(), "widget-token"),
    *api_path("widgets", api.WidgetListCreateApi.as_view(), "widget-list"),
    *api_path("widgets/<uuid:pk>", api.WidgetDetailApi.as_view(), "widget-detail"),
    *api_path("widgets/<uuid:pk>/config", api.WidgetConfigApi.as_view(), "widget-config"),
]
# The widget chat API (bearer API key, camelCase, not enveloped), under /api/widget/.
api_widget = [
    *api_path("chat", chat_api.WidgetChatApi.as_view(), "widget-chat"),
    *api_path("config", chat_api.WidgetChatConfigApi.as_view(), "widget-chat-config"),
    *api_path("scrape", chat_api.WidgetChatScrapeApi.as_view(), "widget-chat-scrape"),
]
pages: list = [
    path("widget.js", views.widget_js, name="widget-js"),
    path("widget/<uuid:pk>/frame", views.widget_frame, name="widget-frame"),
    # Dashboard
    path("widgets/", views.WidgetListView.as_view(), name="widgets"),
    path("widgets/<uuid:pk>/", views.WidgetDetailView.as_view(), name="widget-configure"),
    path("widgets/<uuid:pk>/preview/", views.WidgetPreviewView.as_view(), name="widget-preview"),
    path("widgets/<uuid:pk>/client-key/", views.WidgetKeyCreateView.as_view(), name="widget-client-key"),
    path("widgets/<uuid:pk>/delete/", views.WidgetDeleteView.as_view(), name="widget-delete"),
]
