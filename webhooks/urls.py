from django.urls import path

from core.api.routes import api_path
from webhooks import api, views

api_v1 = [
    *api_path("webhooks", api.WebhookListCreateApi.as_view(), "webhook-list"),
    *api_path("webhooks/<uuid:pk>", api.WebhookDetailApi.as_view(), "webhook-detail"),
    *api_path(
        "webhooks/<uuid:pk>/rotate-secret", api.WebhookSecretRotateApi.as_view(), "webhook-rotate-secret"
    ),
    *api_path("webhooks/<uuid:pk>/deliveries", api.WebhookDeliveryListApi.as_view(), "webhook-delivery-list"),
    *api_path(
        "webhooks/<uuid:pk>/deliveries/<uuid:delivery_id>",
        api.WebhookDeliveryDetailApi.as_view(),
        "webhook-delivery-detail",
    ),
    *api_path(
        "webhooks/<uuid:pk>/deliveries/<uuid:delivery_id>/resend",
        api.WebhookDeliveryResendApi.as_view(),
        "webhook-delivery-resend",
    ),
]

pages = [
    path("settings/webhooks/", views.WebhookListView.as_view(), name="settings-webhooks"),
    path("settings/webhooks/<uuid:pk>/", views.WebhookDetailView.as_view(), name="settings-webhook-detail"),
    path(
        "settings/webhooks/<uuid:pk>/deliveries/<uuid:delivery_id>/resend/",
        views.WebhookResendView.as_view(),
        name="settings-webhook-resend",
    ),
]
