"""OpenAPI description of the widget token credential (registered when the app is ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from organizations.permissions import widget_token_accepted


class WidgetTokenScheme(OpenApiAuthenticationExtension):
    target_class = "widget.authentication.WidgetTokenAuthentication"
    name = "WidgetToken"

    def get_security_requirement(self, auto_schema):
        """Listed only on the operations that accept a widget token (the permission's own
        rule, organizations.permissions): everywhere else a token gets 403."""
        if widget_token_accepted(auto_schema.view, auto_schema.method):
            return {self.name: []}
        return None

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "Widget token from POST /api/v1/auth/widget-token",
        }
