from django.urls import path

from core.api.routes import api_path
from organizations import api, views

api_v1 = [
    *api_path("organization", api.OrganizationDetailApi.as_view(), "organization-detail"),
    *api_path("api-keys", api.ApiKeyListCreateApi.as_view(), "api-key-list"),
    *api_path("api-keys/<uuid:pk>", api.ApiKeyDetailApi.as_view(), "api-key-detail"),
    *api_path("audit-events", api.AuditEventListApi.as_view(), "audit-event-list"),
]

pages = [
    path("signup/", views.SignUpView.as_view(), name="signup"),
    path("signup/sent/", views.SignUpSentView.as_view(), name="signup-sent"),
    path("signup/confirm/<str:token>/", views.SignUpVerifyView.as_view(), name="signup-verify"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password-reset"),
    path("password-reset/sent/", views.PasswordResetDoneView.as_view(), name="password-reset-done"),
    path(
        "password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path("password-reset/done/", views.PasswordResetCompleteView.as_view(), name="password-reset-complete"),
    path("invitations/<str:token>/", views.InvitationView.as_view(), name="invitation"),
    path("organizations/new/", views.OrganizationCreateView.as_view(), name="organization-create"),
    path("organizations/switch/", views.OrganizationSwitchView.as_view(), name="organization-switch"),
    path("settings/", views.OrganizationSettingsView.as_view(), name="settings-organization"),
    path("settings/usage/", views.UsageSettingsView.as_view(), name="settings-usage"),
    path(
        "settings/business-hours/", views.BusinessHoursSettingsView.as_view(), name="settings-business-hours"
    ),
    path("settings/api-keys/", views.ApiKeyListView.as_view(), name="settings-api-keys"),
    path(
        "settings/api-keys/<uuid:pk>/revoke/",
        views.ApiKeyRevokeView.as_view(),
        name="settings-api-key-revoke",
    ),
    path("settings/audit-log/", views.AuditLogView.as_view(), name="settings-audit-log"),
    path("settings/security/", views.SecuritySettingsView.as_view(), name="settings-security"),
    path("settings/members/", views.MemberListView.as_view(), name="settings-members"),
    path("settings/members/<uuid:pk>/role/", views.MemberRoleView.as_view(), name="settings-member-role"),
    path(
        "settings/members/<uuid:pk>/remove/", views.MemberRemoveView.as_view(), name="settings-member-remove"
    ),
]
