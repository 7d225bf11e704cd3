"""OpenAPI description of the widget token credential (registered when the app is ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class WidgetTokenScheme(OpenApiAuthenticationExtension):
    target_class = "widget.authentication.WidgetTokenAuthentication"
    name = "WidgetToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "Widget token from POST /api/v1/auth/widget-token",
        }
