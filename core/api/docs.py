"""The API documentation page: Swagger UI served from this origin (drf-spectacular-sidecar),
under the dashboard's Content-Security-Policy. It used to load `swagger-ui-dist@latest` from
a CDN with no integrity check: a blank page offline and a third party's script on the
dashboard's origin."""

from __future__ import annotations

from drf_spectacular.views import SpectacularSwaggerSplitView

from core.dashboard import SecurityHeadersMixin


class ApiDocsView(SecurityHeadersMixin, SpectacularSwaggerSplitView):
    """The split view delivers its start-up script as a separate same-origin file, so the
    page needs no inline script (`script-src 'self'`)."""
