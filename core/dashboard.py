"""What every dashboard page shares, whichever app it belongs to: the security headers,
pagination, and turning a service's error into form errors or a message.

The current organization and membership checks are `organizations.dashboard.OrganizationMixin`.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator

from core.errors import ApplicationError

PAGE_SIZE = 20

# Dashboard pages load scripts only from our own origin (no inline script, no eval), so a
# visitor-supplied string that slipped past escaping still could not run.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "frame-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)


def security_headers_apply(response):
    response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.setdefault("X-Frame-Options", "DENY")
    return response


class SecurityHeadersMixin:
    def dispatch(self, request, *args, **kwargs):
        return security_headers_apply(super().dispatch(request, *args, **kwargs))


def paginate(request, items, *, per_page: int = PAGE_SIZE):
    """A page of `items` for `?page=` (out-of-range pages clamp to the last one)."""
    paginator = Paginator(items, per_page)
    return paginator.get_page(request.GET.get("page"))


def querystring_without_page(request) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def form_error_apply(form, error: ApplicationError, *, field: str | None = None) -> None:
    """Show a service's error on the form: under `field` when given, else per field where
    its `details` name one of the form's fields, else above the form."""
    if field is not None:
        form.add_error(field, error.message)
        return
    details = error.details if isinstance(error.details, dict) else {}
    placed = False
    for name, texts in details.items():
        if name in form.fields:
            for text in texts if isinstance(texts, list) else [texts]:
                form.add_error(name, str(text))
            placed = True
    if not placed:
        form.add_error(None, error.message)


class service_errors:  # noqa: N801 - used as a statement, like contextlib's helpers
    """The one way a dashboard view turns a service's `ApplicationError` into what the
    operator sees; any other exception passes through.

        with service_errors(form) as failure:          # → errors on the form
            services.assistant_update(...)
        if failure:
            return self.form_invalid(form)

        with service_errors(request=request) as failure:   # → a flash message
            services.source_retry(source=source)

    `failure` is true when the service refused; `failure.error` is the error and
    `failure.message` its text (for views that show it their own way).
    """

    def __init__(self, form=None, *, request=None, field: str | None = None):
        self.form, self.request, self.field = form, request, field
        self.error: ApplicationError | None = None

    def __enter__(self) -> service_errors:
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc is None or not isinstance(exc, ApplicationError):
            return False
        self.error = exc
        if self.form is not None:
            form_error_apply(self.form, exc, field=self.field)
        if self.request is not None:
            messages.error(self.request, exc.message)
        return True

    def __bool__(self) -> bool:
        return self.error is not None

    @property
    def message(self) -> str:
        return self.error.message if self.error is not None else ""

    @property
    def details(self):
        return self.error.details if self.error is not None else None


def lines(value: str) -> list[str]:
    """A textarea with one entry per line → the entries (blank lines dropped)."""
    return [line.strip() for line in (value or "").splitlines() if line.strip()]
