def drop_slashless_duplicates(endpoints, **kwargs):
    """Every API URL is routed with and without its trailing slash; document it once."""
    with_slash = {path for path, *_ in endpoints if path.endswith("/")}
    return [
        endpoint for endpoint in endpoints if endpoint[0].endswith("/") or endpoint[0] + "/" not in with_slash
    ]


# --- The OpenAPI document tells the truth about the envelope and the errors ------------

from drf_spectacular.openapi import AutoSchema  # noqa: E402

from core.api.renderers import EnvelopeJSONRenderer  # noqa: E402

ERROR_SCHEMA = {
    "type": "object",
    "required": ["status", "status_code", "detail", "data"],
    "properties": {
        "status": {"type": "string", "enum": ["error"]},
        "status_code": {"type": "integer"},
        "detail": {"type": "string"},
        "data": {"nullable": True},
    },
}
# What any API operation can answer besides its success: bad input, credentials, a missing
# or foreign object (same 404), method/media negotiation, size, conflicts (idempotency),
# the rate limit, and dependencies that are down or slow (LLM provider, database, Redis).
# 408, 414 and 431 come from the web tier before the application runs, in the same shape
# (supportai.gunicorn_worker).
ERROR_RESPONSES = {
    400: "Invalid input",
    401: "Missing, malformed, unknown or revoked credentials",
    403: "The credential may not use this operation (e.g. a widget token on a management endpoint)",
    404: "Not found (or belongs to another organization)",
    405: "Method not allowed",
    406: "Not acceptable",
    408: "The request did not arrive in time (the web server's limit)",
    409: "Conflict",
    413: "Request body too large",
    414: "Request line too long (the web server's limit)",
    415: "Unsupported media type",
    429: "Rate limit exceeded (see Retry-After)",
    431: "Request header fields too large (the web server's limit)",
    502: "An upstream service (LLM provider, web site) failed",
    503: "Service temporarily unavailable (database or cache down; see Retry-After)",
    504: "An upstream service timed out",
}


def _envelope(data_schema: dict | None) -> dict:
    data = dict(data_schema) if data_schema else {"nullable": True}
    return {
        "type": "object",
        "required": ["status", "status_code", "data"],
        "properties": {
            "status": {"type": "string", "enum": ["success"]},
            "status_code": {"type": "integer"},
            "data": data,
        },
    }


class EnvelopeAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus what EnvelopeJSONRenderer and the exception
    handler really send: success bodies wrapped in `{"status","status_code","data"}`, and
    the error envelope documented for every error status an operation can return."""

    def _map_basic_serializer(self, serializer, direction):
        """A serializer's `Meta.sometimes_absent` names read-only fields that some readers do
        not receive (a widget visitor's token reads messages without `tool_calls`): documented,
        but not required, so the schema holds for every reader."""
        schema = super()._map_basic_serializer(serializer, direction)
        absent = set(getattr(getattr(serializer, "Meta", None), "sometimes_absent", ()))
        if absent and "required" in schema:
            schema["required"] = [name for name in schema["required"] if name not in absent]
            if not schema["required"]:
                del schema["required"]
        return schema

    def _is_enveloped(self) -> bool:
        renderers = getattr(self.view, "renderer_classes", None) or []
        return bool(renderers) and issubclass(renderers[0], EnvelopeJSONRenderer)

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        if self._is_enveloped():
            for code, response in list(responses.items()):
                if not str(code).startswith("2"):
                    continue
                content = response.get("content")
                if not content:
                    if str(code) == "204":  # really no content (DELETE sessions/conversations)
                        continue
                    response = dict(response)
                    response["content"] = {"application/json": {"schema": _envelope(None)}}
                    responses[code] = response
                    continue
                for media_type, body in content.items():
                    if "json" in media_type:
                        body["schema"] = _envelope(body.get("schema"))
        for status_code, description in ERROR_RESPONSES.items():
            responses.setdefault(
                str(status_code),
                {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}},
            )
        return responses
