"""SPEC's response shapes, built in one place."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse


def error_body(status_code: int, detail: str, data: Any = None) -> dict:
    return {"status": "error", "status_code": status_code, "detail": detail, "data": data}


def error_response(status_code: int, detail: str, data: Any = None) -> JsonResponse:
    return JsonResponse(error_body(status_code, detail, data), status=status_code)


def is_api_path(path: str) -> bool:
    return path.startswith("/api/")
