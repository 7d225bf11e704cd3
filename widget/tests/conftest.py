import pytest

from assistants.models import Assistant
from widget.services import widget_create


@pytest.fixture
def assistant(tenant):
    return Assistant.objects.create(organization=tenant.organization, name="Helper")


@pytest.fixture
def other_assistant(other_tenant):
    return Assistant.objects.create(organization=other_tenant.organization, name="Theirs")


@pytest.fixture
def widget(tenant, assistant):
    return widget_create(organization=tenant.organization, assistant_id=assistant.id, title="Acme help")


@pytest.fixture
def other_widget(other_tenant, other_assistant):
    return widget_create(organization=other_tenant.organization, assistant_id=other_assistant.id)


def assert_error(response, status_code):
    assert response.status_code == status_code, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "error" and body["status_code"] == status_code and body["detail"]
    assert "data" in body
    return body


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Tenants' owners get passwords; the production hasher's 1M rounds would dominate."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
