from rest_framework import permissions

from organizations.credentials import Credential


class HasOrganizationCredential(permissions.BasePermission):
    """An API key, or a widget token on the few views that accept one."""

    message = "Widget tokens cannot access this endpoint."

    def has_permission(self, request, view) -> bool:
        credential = request.auth
        if not isinstance(credential, Credential):
            return False
        if credential.is_widget and not getattr(view, "allow_widget_token", False):
            return False
        return True
