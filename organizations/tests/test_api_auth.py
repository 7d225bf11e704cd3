import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from organizations.models import ApiKey
from organizations.services import api_key_mark_used, api_key_revoke, api_key_verify_pair
from widget.tokens import widget_token_issue

pytestmark = pytest.mark.django_db

URL = "/api/v1/organization"


def assert_error(response, status_code):
    assert response.status_code == status_code, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "error"
    assert body["status_code"] == status_code
    assert body["detail"]
    assert "data" in body
    return body


def test_key_pair_headers_authenticate(tenant):
    response = tenant.client().get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "status": "success",
        "status_code": 200,
        "data": {
            "id": str(tenant.organization.id),
            "name": "Acme Inc",
            "slug": tenant.organization.slug,
            "rate_limit_per_hour": 1000,
            "created_at": body["data"]["created_at"],
        },
    }


def test_bearer_secret_authenticates(tenant):
    response = tenant.client(bearer=True).get(URL + "/")
    assert response.status_code == 200
    assert response.json()["data"]["slug"] == tenant.organization.slug


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_X_API_KEY": "ci_unknown", "HTTP_X_API_SECRET": "sk_abc_def"},
        {"HTTP_AUTHORIZATION": "Bearer sk_000000000000_nope"},
        {"HTTP_AUTHORIZATION": "Bearer sk_garbage"},
        {"HTTP_AUTHORIZATION": "Bearer not-a-jwt"},
        {"HTTP_AUTHORIZATION": "Bearer "},
        {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"},
    ],
)
def test_missing_unknown_or_malformed_credentials_get_401(tenant, headers):
    body = assert_error(APIClient().get(URL, **headers), 401)
    assert body["detail"].startswith("Authentication required - ")


def test_wrong_secret_for_a_real_client_id_is_401(tenant):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=tenant.client_id, HTTP_X_API_SECRET=tenant.client_secret + "x")
    assert_error(client.get(URL), 401)


def test_client_id_without_secret_is_401(tenant):
    assert_error(APIClient().get(URL, HTTP_X_API_KEY=tenant.client_id), 401)


def test_key_in_query_string_is_not_accepted(tenant):
    assert_error(APIClient().get(f"{URL}?api_key={tenant.client_secret}"), 401)


def test_revoked_key_is_rejected_immediately(tenant):
    api_key = ApiKey.objects.for_organization(tenant.organization).get(client_id=tenant.client_id)
    client = tenant.client()
    assert client.get(URL).status_code == 200
    api_key_revoke(api_key=api_key)
    assert_error(client.get(URL), 401)
    assert_error(tenant.client(bearer=True).get(URL), 401)


def test_secret_is_stored_only_as_a_hash(tenant):
    api_key = ApiKey.objects.for_organization(tenant.organization).get(client_id=tenant.client_id)
    assert tenant.client_secret.startswith("sk_")
    assert tenant.client_secret not in str(api_key.__dict__)
    assert api_key.secret_hash != tenant.client_secret
    assert tenant.client_secret.startswith(api_key.secret_prefix)


def test_last_used_is_recorded_at_most_once_a_minute(tenant, django_assert_num_queries):
    client = tenant.client()
    client.get(URL)
    api_key = ApiKey.objects.for_organization(tenant.organization).get(client_id=tenant.client_id)
    first = api_key.last_used_at
    assert first is not None and first <= timezone.now()
    # A second request within the minute: one query to look the key up, no UPDATE.
    with django_assert_num_queries(1):
        client.get(URL)
    api_key.refresh_from_db()
    assert api_key.last_used_at == first


def test_widget_token_is_refused_on_management_endpoints(tenant):
    token, _ = widget_token_issue(organization_id=tenant.organization.id)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_error(client.get("/api/v1/api-keys"), 403)


def test_api_key_crud_shows_the_secret_once(tenant, other_tenant):
    client = tenant.client()
    created = client.post("/api/v1/api-keys/", {"name": "CI"}, format="json")
    assert created.status_code == 201
    data = created.json()["data"]
    secret = data["client_secret"]
    assert secret.startswith("sk_")
    listed = client.get("/api/v1/api-keys").json()["data"]
    assert listed["count"] == 2
    assert secret not in str(listed)
    detail = client.get(f"/api/v1/api-keys/{data['id']}").json()["data"]
    assert "client_secret" not in detail
    # Another organization cannot see, revoke or learn of it.
    assert_error(other_tenant.client().get(f"/api/v1/api-keys/{data['id']}"), 404)
    assert_error(other_tenant.client().delete(f"/api/v1/api-keys/{data['id']}"), 404)
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert fresh.get(URL).status_code == 200
    revoked = client.delete(f"/api/v1/api-keys/{data['id']}")
    assert revoked.status_code == 200 and revoked.json()["data"]["is_active"] is False
    assert_error(fresh.get(URL), 401)


def test_a_key_cannot_mint_a_key_that_may_do_more_than_itself(tenant):
    """Found by the security pass: a key made by an admin since demoted may not erase, export
    or read the audit log, but it could create a key through the API, and that key (with no
    creator, like a command's) could do all of it. Keys now manage keys only if they may
    administer, and a key made by a key has that key's creator."""
    from organizations.models import Membership
    from organizations.selectors import api_key_may_administer
    from organizations.services import api_key_create, membership_role_change
    from testkit.fixtures import member_add

    bob = member_add(tenant, role="admin", email="bob@demoted.example")
    key, secret = api_key_create(organization=tenant.organization, name="bob's", created_by=bob)
    bobs = APIClient()
    bobs.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    made = bobs.post("/api/v1/api-keys", {"name": "made by bob's key"}, format="json")
    assert made.status_code == 201
    child = ApiKey.objects.for_organization(tenant.organization).get(pk=made.json()["data"]["id"])
    assert child.created_by_id == bob.pk and api_key_may_administer(api_key=child)
    membership_role_change(  # the demoting admin keeps both keys working (else they are revoked)
        membership=Membership.objects.for_organization(tenant.organization).get(user=bob),
        role="agent",
        keep_api_key_ids=[key.pk, child.pk],
    )
    assert not api_key_may_administer(api_key=child)  # it followed its maker's demotion
    count = ApiKey.objects.for_organization(tenant.organization).count()
    assert_error(bobs.post("/api/v1/api-keys", {"name": "escalated"}, format="json"), 403)
    assert ApiKey.objects.for_organization(tenant.organization).count() == count
    assert_error(bobs.delete(f"/api/v1/api-keys/{child.pk}"), 403)
    assert ApiKey.objects.for_organization(tenant.organization).get(pk=child.pk).revoked_at is None
    assert_error(bobs.get("/api/v1/audit-events"), 403)
    # A key made by an operator command (no creator) still manages keys, and so do its keys.
    made = tenant.client().post("/api/v1/api-keys", {"name": "ops"}, format="json")
    assert made.status_code == 201
    assert (
        ApiKey.objects.for_organization(tenant.organization).get(pk=made.json()["data"]["id"]).created_by_id
        is None
    )


def test_api_key_create_validation(tenant):
    body = assert_error(tenant.client().post("/api/v1/api-keys", {}, format="json"), 400)
    assert "name" in body["data"]


def test_last_used_is_written_again_after_the_minute_and_never_backwards(tenant):
    client = tenant.client()
    api_key = ApiKey.objects.for_organization(tenant.organization).get(client_id=tenant.client_id)
    long_ago = timezone.now() - dt.timedelta(minutes=5)
    ApiKey.objects.for_organization(tenant.organization).filter(pk=api_key.pk).update(last_used_at=long_ago)
    assert client.get(URL).status_code == 200
    api_key.refresh_from_db()
    assert api_key.last_used_at > long_ago + dt.timedelta(minutes=4)

    # Another process recorded this minute after our request read the key: its stale copy
    # sends the conditional UPDATE, which leaves the newer value alone.
    recorded = api_key.last_used_at
    stale = ApiKey.objects.for_organization(tenant.organization).get(pk=api_key.pk)
    stale.last_used_at = long_ago
    api_key_mark_used(api_key=stale)
    api_key.refresh_from_db()
    assert api_key.last_used_at == recorded


@pytest.mark.without_redis
def test_a_request_within_the_minute_sends_only_the_key_lookup_whatever_the_cache(
    tenant, django_assert_num_queries
):
    """With the Postgres cache too: the minute was a cache `add`, five statements whose INSERT
    failed on the existing key (an ERROR in Postgres's log) on nearly every request."""
    assert tenant.client().get(URL).status_code == 200  # records this minute
    with django_assert_num_queries(1):  # the key's lookup; no cache statement, no UPDATE
        assert api_key_verify_pair(client_id=tenant.client_id, secret=tenant.client_secret) is not None
