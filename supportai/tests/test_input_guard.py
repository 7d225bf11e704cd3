"""The one input guard (core.api.parsers): every API view parses through it, and the
dashboard's query strings pass the same check (the attack itself: tests/test_attack_input.py)."""

from __future__ import annotations

import pytest
from django.urls import get_resolver

from core.api.parsers import (
    MAX_NESTING,
    GuardedFormParser,
    GuardedJSONParser,
    GuardedMultiPartParser,
    input_problem,
)


def _api_views():
    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                yield from walk(pattern.url_patterns, route)
            elif route.startswith("api/"):
                view_class = getattr(pattern.callback, "view_class", None) or getattr(
                    pattern.callback, "cls", None
                )
                if view_class is not None and hasattr(view_class, "parser_classes"):
                    yield route, view_class

    return list(walk(get_resolver().url_patterns))


def test_every_api_view_parses_through_the_guard():
    """A view that lists DRF's own parsers would bypass the guard: none may."""
    guarded = (GuardedJSONParser, GuardedFormParser, GuardedMultiPartParser)
    views = _api_views()
    assert len(views) >= 20
    for route, view_class in views:
        for parser in view_class().get_parsers():
            assert isinstance(parser, guarded), (route, parser)


def test_input_problem_walks_keys_values_and_depth_without_recursing():
    assert input_problem({"a": [1, "b", {"c": None}], "d": 1.5}) is None
    assert "NUL" in input_problem({"a": ["ok", {"b": "x\x00"}]})
    assert "NUL" in input_problem({"k\x00": 1})
    assert "surrogate" in input_problem(["\ud800"])
    nested: list = []
    for _ in range(50_000):  # far past Python's recursion limit: the walk is iterative
        nested = [nested]
    assert "nested too deeply" in input_problem(nested)
    ok: list = []
    for _ in range(MAX_NESTING - 1):
        ok = [ok]
    assert input_problem(ok) is None


@pytest.mark.django_db
def test_a_nul_in_a_dashboard_query_string_is_a_400_page_not_a_500(owner_client):
    for path in ("/inbox/?q=%00", "/inbox/?customer=a%00", "/knowledge/?assistant=%00"):
        response = owner_client.get(path)
        assert response.status_code == 400, (path, response.status_code)
        assert b"Traceback" not in response.content
    assert owner_client.get("/inbox/?q=refund").status_code == 200
