"""Template context the chat app adds to every dashboard page of an organization."""

from __future__ import annotations

import functools


def inbox_waiting(request) -> dict:
    """`nav_waiting`: conversations waiting for a person (the Inbox badge; the page keeps it
    current). Counted once, and only when a template shows it."""
    organization = getattr(request, "organization", None)
    if organization is None:
        return {}
    from chat import selectors

    return {"nav_waiting": functools.cache(lambda: selectors.waiting_count(organization=organization))}
