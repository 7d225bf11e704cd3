"""OpenAPI description of the API key credential (registered when the app is ready).

Two ways to present a key (SPEC "Credentials"), as two alternative security requirements:
`X-API-Key` + `X-API-Secret` together (one requirement naming both headers), or the secret
alone as `Authorization: Bearer sk_…`. The server refuses a key id sent with a bearer secret
(the pair's headers "must be sent together"), so the schema must not list that combination."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

API_KEY_PAIR = {"ApiKeyId": [], "ApiKeySecret": []}
API_KEY_BEARER = {"ApiKeyBearer": []}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "organizations.authentication.ApiKeyAuthentication"
    name = ["ApiKeyId", "ApiKeySecret", "ApiKeyBearer"]

    def get_security_requirement(self, auto_schema):
        return [dict(API_KEY_PAIR), dict(API_KEY_BEARER)]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-API-Key",
                "description": "The key's client_id (ci_…); always sent with X-API-Secret.",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-API-Secret",
                "description": "The key's client_secret (sk_…, shown once); always sent with X-API-Key.",
            },
            {
                "type": "http",
                "scheme": "bearer",
                "description": "Authorization: Bearer <client_secret> (sk_…), instead of the two headers.",
            },
        ]
