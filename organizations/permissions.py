from rest_framework import permissions

from organizations.credentials import Credential


def widget_token_accepted(view, method: str) -> bool:
    """Whether `view` takes a widget token for `method`: its `allow_widget_token`, narrowed to
    `widget_token_methods` where a view lists them. The OpenAPI schema (widget.schema) reads
    the same answer, so it lists the widget token exactly where one is accepted."""
    if not getattr(view, "allow_widget_token", False):
        return False
    methods = getattr(view, "widget_token_methods", None)
    return methods is None or method.upper() in methods


class HasOrganizationCredential(permissions.BasePermission):
    """An API key, or a widget token on the few views (and methods) that accept one."""

    message = "Widget tokens cannot access this endpoint."

    def has_permission(self, request, view) -> bool:
        credential = request.auth
        if not isinstance(credential, Credential):
            return False
        if credential.is_widget and not widget_token_accepted(view, request.method):
            return False
        return True
