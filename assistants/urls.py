from django.urls import path

from assistants import api, views
from core.api.routes import api_path

api_v1 = [
    *api_path("assistants", api.AssistantListCreateApi.as_view(), "assistant-list"),
    *api_path("assistants/<uuid:pk>", api.AssistantDetailApi.as_view(), "assistant-detail"),
    *api_path("assistants/<uuid:pk>/actions", api.ActionListCreateApi.as_view(), "assistant-action-list"),
    *api_path(
        "assistants/<uuid:pk>/actions/import-openapi",
        api.ActionImportApi.as_view(),
        "assistant-action-import",
    ),
    *api_path(
        "assistants/<uuid:pk>/actions/<uuid:action_id>",
        api.ActionDetailApi.as_view(),
        "assistant-action-detail",
    ),
    *api_path("contexts", api.UserContextListCreateApi.as_view(), "context-list"),
    *api_path("contexts/<uuid:pk>", api.UserContextDetailApi.as_view(), "context-detail"),
]
pages = [
    path("assistants/", views.AssistantListView.as_view(), name="assistants"),
    path("assistants/new/", views.AssistantCreateView.as_view(), name="assistant-create"),
    path("assistants/<uuid:pk>/", views.AssistantUpdateView.as_view(), name="assistant-edit"),
    path("assistants/<uuid:pk>/delete/", views.AssistantDeleteView.as_view(), name="assistant-delete"),
    path("assistants/<uuid:pk>/actions/new/", views.ActionFormView.as_view(), name="assistant-action-create"),
    path(
        "assistants/<uuid:pk>/actions/<uuid:action_id>/",
        views.ActionFormView.as_view(),
        name="assistant-action-edit",
    ),
    path(
        "assistants/<uuid:pk>/actions/<uuid:action_id>/delete/",
        views.ActionDeleteView.as_view(),
        name="assistant-action-delete",
    ),
    path("settings/ai-model/", views.ModelSettingsView.as_view(), name="settings-ai-model"),
    path(
        "settings/ai-model/<uuid:pk>/",
        views.ModelConnectionUpdateView.as_view(),
        name="settings-ai-model-edit",
    ),
    path(
        "settings/ai-model/<uuid:pk>/delete/",
        views.ModelConnectionDeleteView.as_view(),
        name="settings-ai-model-delete",
    ),
]
