from django.urls import path

from chat import api, api_privacy, views
from core.api.routes import api_path

api_v1 = [
    *api_path("sessions", api.SessionListCreateApi.as_view(), "session-list"),
    *api_path("sessions/<uuid:pk>", api.SessionDetailApi.as_view(), "session-detail"),
    *api_path("sessions/<uuid:pk>/messages", api.SessionMessagesApi.as_view(), "session-messages"),
    *api_path("sessions/<uuid:pk>/events", api.SessionEventsApi.as_view(), "session-events"),
    *api_path(
        "sessions/<uuid:pk>/messages/<uuid:message_id>/feedback",
        api.SessionMessageFeedbackApi.as_view(),
        "session-message-feedback",
    ),
    *api_path("sessions/<uuid:pk>/handoff", api.SessionHandoffApi.as_view(), "session-handoff"),
    *api_path("sessions/<uuid:pk>/csat", api.SessionCsatApi.as_view(), "session-csat"),
    *api_path("conversations", api.ConversationListCreateApi.as_view(), "conversation-list"),
    *api_path("conversations/<uuid:pk>", api.ConversationDetailApi.as_view(), "conversation-detail"),
    *api_path(
        "conversations/<uuid:pk>/messages", api.ConversationMessagesApi.as_view(), "conversation-messages"
    ),
    *api_path(
        "conversations/<uuid:pk>/handoff", api.ConversationHandoffApi.as_view(), "conversation-handoff"
    ),
    *api_path("conversations/<uuid:pk>/csat", api.ConversationCsatApi.as_view(), "conversation-csat"),
    *api_path("conversations/<uuid:pk>/events", api.ConversationEventsApi.as_view(), "conversation-events"),
    *api_path(
        "conversations/<uuid:pk>/messages/<uuid:message_id>/feedback",
        api.ConversationMessageFeedbackApi.as_view(),
        "conversation-message-feedback",
    ),
    *api_path("sessions/<uuid:pk>/reply", api.SessionReplyApi.as_view(), "session-reply"),
    *api_path("sessions/<uuid:pk>/resolve", api.SessionResolveApi.as_view(), "session-resolve"),
    *api_path("sessions/<uuid:pk>/hand-back", api.SessionHandBackApi.as_view(), "session-hand-back"),
    *api_path("sessions/<uuid:pk>/reopen", api.SessionReopenApi.as_view(), "session-reopen"),
    *api_path("conversations/<uuid:pk>/reply", api.ConversationReplyApi.as_view(), "conversation-reply"),
    *api_path(
        "conversations/<uuid:pk>/resolve", api.ConversationResolveApi.as_view(), "conversation-resolve"
    ),
    *api_path(
        "conversations/<uuid:pk>/hand-back", api.ConversationHandBackApi.as_view(), "conversation-hand-back"
    ),
    *api_path("conversations/<uuid:pk>/reopen", api.ConversationReopenApi.as_view(), "conversation-reopen"),
    *api_path("privacy/erase", api_privacy.PrivacyEraseApi.as_view(), "privacy-erase"),
    *api_path("privacy/export", api_privacy.PrivacyExportApi.as_view(), "privacy-export"),
]
pages = [
    # Settings › AI model's Test connection (the page itself is assistants'): calling a model is chat's.
    path(
        "settings/ai-model/<uuid:pk>/test/",
        views.ModelConnectionTestView.as_view(),
        name="settings-ai-model-test",
    ),
    # The assistant's playground: under the assistant's pages, driven by chat.
    path("assistants/<uuid:pk>/playground/", views.PlaygroundView.as_view(), name="assistant-playground"),
    path(
        "assistants/<uuid:pk>/playground/reset/",
        views.PlaygroundResetView.as_view(),
        name="assistant-playground-reset",
    ),
    # Dashboard
    path("settings/privacy/", views.PrivacySettingsView.as_view(), name="settings-privacy"),
    path("inbox/", views.InboxView.as_view(), name="inbox"),
    # The knowledge page's tester: retrieval plus chat's relevance gate (knowledge cannot
    # import chat, so the view is on this side).
    path("knowledge/test/", views.RetrievalTestView.as_view(), name="knowledge-test"),
    path("inbox/export.csv", views.InboxExportView.as_view(), name="inbox-export"),
    path("inbox/queue/", views.WaitingQueueView.as_view(), name="inbox-queue"),
    path("inbox/saved-replies/", views.SavedRepliesView.as_view(), name="inbox-saved-replies"),
    path("inbox/notifications/", views.NotificationsView.as_view(), name="inbox-notifications"),
    path("inbox/<uuid:pk>/assign/", views.ConversationAssignView.as_view(), name="inbox-assign"),
    path("inbox/<uuid:pk>/notes/", views.ConversationNoteView.as_view(), name="inbox-note"),
    path("inbox/<uuid:pk>/", views.InboxView.as_view(), name="inbox-conversation"),
    path("inbox/<uuid:pk>/messages/", views.TranscriptPollView.as_view(), name="inbox-transcript"),
    path("inbox/<uuid:pk>/reply/", views.OperatorReplyView.as_view(), name="inbox-reply"),
    path("inbox/<uuid:pk>/typing/", views.OperatorTypingView.as_view(), name="inbox-typing"),
    path(
        "inbox/<uuid:pk>/<slug:action>/",
        views.ConversationActionView.as_view(),
        name="inbox-action",
    ),
]
