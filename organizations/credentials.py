"""What an authenticated API request carries: the organization and how it got in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from organizations.models import ApiKey, Organization


@dataclass(frozen=True)
class Credential:
    organization: Organization
    kind: str  # "api_key" or "widget"
    api_key: ApiKey | None = None
    widget_id: str | None = None
    # The widget token's widget (claim `wid`), loaded with the credential by
    # widget.authentication; typed loosely because this app sits below the widget app.
    widget: Any = None
    visitor_id: str | None = None
    claims: dict | None = None
    # Whether the credential would still be accepted (key not revoked; a widget token not
    # expired, its key and widget still on): set by the authentication class, asked again by
    # what outlives one request (a live event stream), so a revocation ends those too.
    still_valid: Callable[[], bool] | None = field(default=None, compare=False, repr=False)

    # DRF treats request.user as the principal; the credential is that principal.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_widget(self) -> bool:
        return self.kind == "widget"

    @property
    def verified_user_id(self) -> str | None:
        """The customer a widget token's visitor was proven to be (claim `uid`), if any."""
        return (self.claims or {}).get("uid") if self.is_widget else None

    @property
    def pk(self) -> str:
        return f"{self.kind}:{self.api_key.pk if self.api_key else self.visitor_id}"
