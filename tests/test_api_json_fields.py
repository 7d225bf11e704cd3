"""JSON inside form fields gets the same guard as a JSON body (issue 13 #8's one guard).

A multipart or urlencoded field holding JSON text (`traits='{"plan": "\\u0000"}'`) is decoded
by the serializer field, after the parsers checked the raw text: Schemathesis found the NUL it
held reaching a jsonb write, a 500. Every JSON field of every API serializer derives from
`core.api.fields.JSONField`, which checks what it decoded."""

from __future__ import annotations

import importlib
import json
from urllib.parse import urlencode

import pytest
from rest_framework import serializers

from core.api.fields import JSONField
from tests.conftest import assert_error_shape

pytestmark = pytest.mark.django_db

APPS = ("organizations", "assistants", "chat", "knowledge", "widget", "webhooks")


def _serializer_classes():
    for app in APPS:
        for module_name in ("serializers", "api"):
            try:
                module = importlib.import_module(f"{app}.{module_name}")
            except ModuleNotFoundError:
                continue
            for value in vars(module).values():
                if (
                    isinstance(value, type)
                    and issubclass(value, serializers.BaseSerializer)
                    and value.__module__ == module.__name__
                ):
                    yield value


def test_every_json_field_the_api_reads_is_the_guarded_one():
    seen = 0
    for serializer_class in _serializer_classes():
        try:
            fields = serializer_class().fields
        except Exception:  # noqa: BLE001 - a serializer that needs context: its declared fields
            fields = serializer_class._declared_fields
        for name, field in fields.items():
            if isinstance(field, serializers.JSONField) and not field.read_only:
                seen += 1
                assert isinstance(field, JSONField), f"{serializer_class.__name__}.{name} is a bare JSONField"
    assert seen >= 8


@pytest.mark.parametrize("content_type", ["multipart", "urlencoded"])
def test_a_nul_inside_json_in_a_form_field_is_a_400(tenant, content_type):
    api = tenant.client()

    def post(fields: dict):
        if content_type == "multipart":
            return api.post("/api/v1/contexts/", fields, format="multipart")
        return api.post(
            "/api/v1/contexts/", urlencode(fields), content_type="application/x-www-form-urlencoded"
        )

    refused = post({"user_reference": "form-1", "traits": json.dumps({"plan": "pro\u0000"})})
    assert "NUL" in assert_error_shape(refused, 400)["detail"]
    refused = post({"user_reference": "form-2", "traits": "[" * 40 + "]" * 40})
    assert "nested too deeply" in assert_error_shape(refused, 400)["detail"]
    fine = post({"user_reference": "form-3", "traits": json.dumps({"plan": "pro"})})
    assert fine.status_code == 201, fine.content
    assert fine.json()["data"]["traits"] == {"plan": "pro"}
