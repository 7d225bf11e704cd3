"""Serializer fields whose OpenAPI types say what the JSON really holds.

A bare `serializers.JSONField` is documented as "any value"; these say "an object" or "a list
of these objects", as the API references and SPEC describe them (`metadata`, `traits`, a
message's `sources` and `tool_calls`). They read and write exactly like `JSONField`; the
validators that refuse a non-object stay where they are."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.parsers import input_problem

JSON_OBJECT = {"type": "object", "additionalProperties": {}}

# What a message was grounded on (knowledge.types.Passage.as_source, chat.grounding): a Q&A
# pair, a file chunk (file + page), a page chunk (url), or the request's own policies, company
# description or scraped data.
SOURCE = {
    "type": "object",
    "required": ["type", "title", "url", "file", "page", "snippet"],
    "properties": {
        "source_id": {"type": "string", "format": "uuid", "description": "the knowledge source"},
        "type": {"type": "string", "description": "qa, file, url, policy, company or scraped"},
        "title": {"type": "string"},
        "url": {"type": "string"},
        "file": {"type": "string"},
        "page": {"type": "integer", "nullable": True},
        "snippet": {"type": "string"},
        "score": {"type": "number"},
        "relevance": {"type": "number"},
        "number": {"type": "integer", "description": "the [n] the answer cites it by"},
    },
}

# One assistant action called for an answer (chat.actions._record).
TOOL_CALL = {
    "type": "object",
    "required": ["name", "arguments", "status", "duration_ms"],
    "properties": {
        "name": {"type": "string"},
        "arguments": {},
        "status": {"type": "string"},
        "duration_ms": {"type": "integer"},
        "error": {"type": "string"},
    },
}


class JSONField(serializers.JSONField):
    """`serializers.JSONField` with the parsers' guard (`core.api.parsers.input_problem`) on
    the value it decodes. A form or multipart field holding JSON text is decoded here, after
    the parsers ran: `{"plan": "\\u0000"}` in a form field became a NUL in a jsonb write, a
    500. Every JSON field of the API derives from this one (tests/test_api_json_fields.py)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        problem = input_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value


@extend_schema_field(JSON_OBJECT)
class JSONObjectField(JSONField):
    """A JSON object (free-form keys)."""


@extend_schema_field({"type": "array", "items": SOURCE})
class SourcesField(JSONField):
    """A message's `sources`."""


@extend_schema_field({"type": "array", "items": TOOL_CALL})
class ToolCallsField(JSONField):
    """A message's `tool_calls`."""
