from __future__ import annotations

from django.urls import path


def api_path(route: str, view, name: str) -> list:
    """Route `route` both with and without its trailing slash, for every method.

    The seeds call `/api/v1/sessions/` and `/api/v1/sessions` alike, and a redirect would
    drop a POST body, so both spellings are served directly.
    """
    route = route.rstrip("/")
    return [path(route + "/", view, name=name), path(route, view, name=name + "-noslash")]
