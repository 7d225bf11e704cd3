import pytest

from core.tenancy import UnscopedQueryError
from organizations.models import ApiKey

pytestmark = pytest.mark.django_db


def test_unscoped_queries_fail_closed(tenant):
    with pytest.raises(UnscopedQueryError):
        list(ApiKey.objects.all())
    with pytest.raises(UnscopedQueryError):
        ApiKey.objects.filter(name="test key").exists()
    with pytest.raises(UnscopedQueryError):
        ApiKey.objects.get(client_id=tenant.client_id)
    with pytest.raises(UnscopedQueryError):
        ApiKey.objects.for_organization(None)
    with pytest.raises(UnscopedQueryError):
        ApiKey.objects.create(name="orphan", client_id="x", secret_prefix="y", secret_hash="z")


def test_scoped_queries_see_only_their_organization(tenant, other_tenant):
    mine = ApiKey.objects.for_organization(tenant.organization)
    assert [key.client_id for key in mine] == [tenant.client_id]
    assert not mine.filter(client_id=other_tenant.client_id).exists()
    assert ApiKey.objects.unscoped().count() == 2


def test_every_api_url_is_served_by_a_tenant_scoped_view():
    """Walk the URL conf: every /api/ view must inherit the organization base class."""
    from django.urls import get_resolver

    from organizations.api_base import OrganizationAPIView

    public = {"schema", "api-docs", "widget-token", "widget-token-noslash"}
    seen = 0

    def walk(patterns, prefix=""):
        nonlocal seen
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, route)
                continue
            if not route.startswith("api/"):
                continue
            view_class = getattr(pattern.callback, "view_class", None) or getattr(
                pattern.callback, "cls", None
            )
            if pattern.name in public:
                continue
            seen += 1
            assert view_class is not None and issubclass(view_class, OrganizationAPIView), route

    walk(get_resolver().url_patterns)
    assert seen >= 4
