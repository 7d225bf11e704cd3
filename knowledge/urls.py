from django.urls import path

from core.api.routes import api_path
from knowledge import api, views

api_v1: list = [
    *api_path("knowledge/files", api.FileSourceListCreateApi.as_view(), "knowledge-file-list"),
    *api_path("knowledge/files/<uuid:pk>", api.FileSourceDetailApi.as_view(), "knowledge-file-detail"),
    *api_path("knowledge/files/<uuid:pk>/retry", api.FileSourceRetryApi.as_view(), "knowledge-file-retry"),
    *api_path("knowledge/urls", api.UrlSourceListCreateApi.as_view(), "knowledge-url-list"),
    *api_path("knowledge/urls/<uuid:pk>", api.UrlSourceDetailApi.as_view(), "knowledge-url-detail"),
    *api_path("knowledge/urls/<uuid:pk>/retry", api.UrlSourceRetryApi.as_view(), "knowledge-url-retry"),
    *api_path("knowledge/qa", api.QaSourceListCreateApi.as_view(), "knowledge-qa-list"),
    *api_path("knowledge/qa/<uuid:pk>", api.QaSourceDetailApi.as_view(), "knowledge-qa-detail"),
    *api_path("knowledge/search", api.KnowledgeSearchApi.as_view(), "knowledge-search"),
    *api_path("knowledge/settings", api.KnowledgeSettingsApi.as_view(), "knowledge-settings"),
]
pages = [
    path("settings/knowledge/", views.KnowledgeSettingsView.as_view(), name="settings-knowledge"),
    path(
        "settings/knowledge/progress/",
        views.KnowledgeSettingsProgressView.as_view(),
        name="settings-knowledge-progress",
    ),
    path("knowledge/", views.KnowledgeListView.as_view(), name="knowledge"),
    path("knowledge/qa/", views.QACreateView.as_view(), name="knowledge-qa-create"),
    path("knowledge/files/", views.FileUploadView.as_view(), name="knowledge-files"),
    path("knowledge/urls/", views.UrlCreateView.as_view(), name="knowledge-url-create"),
    path("knowledge/<uuid:pk>/retry/", views.SourceRetryView.as_view(), name="knowledge-source-retry"),
    path("knowledge/<uuid:pk>/", views.SourceDetailView.as_view(), name="knowledge-source"),
    path("knowledge/<uuid:pk>/row/", views.SourceRowView.as_view(), name="knowledge-source-row"),
    path("knowledge/<uuid:pk>/delete/", views.SourceDeleteView.as_view(), name="knowledge-source-delete"),
]
