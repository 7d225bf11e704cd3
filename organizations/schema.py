"""OpenAPI description of the API key credential (registered when the app is ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "organizations.authentication.ApiKeyAuthentication"
    name = ["ApiKeyPair", "ApiKeySecret"]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-API-Key",
                "description": "client_id; send with X-API-Secret (the client secret).",
            },
            {
                "type": "http",
                "scheme": "bearer",
                "description": "Authorization: Bearer <client_secret> (sk_…)",
            },
        ]
