"""Attack rows 38, 39, 41 (API-key authentication, key storage, secrets in logs) and 29
(mass assignment on the org-scoped API-key create)."""

from __future__ import annotations

import uuid

import pytest
import requests
from django.db import connection
from rest_framework.test import APIClient

from organizations.models import ApiKey
from organizations.services import api_key_create, api_key_revoke
from testkit.fixtures import tenant_create
from tests.conftest import assert_error_shape
from widget.tokens import widget_token_issue

URL = "/api/v1/organization"


def _get(**headers):
    return APIClient().get(URL, **headers)


@pytest.mark.django_db
class TestApiKeyAuthVariants:
    def test_every_bad_credential_gets_the_same_401_body(self, tenant, other_tenant):
        revoked_key, revoked_secret = api_key_create(organization=tenant.organization, name="old")
        api_key_revoke(api_key=revoked_key)
        attempts = {
            "wrong secret": {
                "HTTP_X_API_KEY": tenant.client_id,
                "HTTP_X_API_SECRET": tenant.client_secret + "x",
            },
            "other org's secret": {
                "HTTP_X_API_KEY": tenant.client_id,
                "HTTP_X_API_SECRET": other_tenant.client_secret,
            },
            "unknown client id": {
                "HTTP_X_API_KEY": "ci_" + "0" * 24,
                "HTTP_X_API_SECRET": tenant.client_secret,
            },
            "revoked pair": {"HTTP_X_API_KEY": revoked_key.client_id, "HTTP_X_API_SECRET": revoked_secret},
            "revoked bearer": {"HTTP_AUTHORIZATION": f"Bearer {revoked_secret}"},
            "truncated bearer": {"HTTP_AUTHORIZATION": f"Bearer {tenant.client_secret[:-4]}"},
            "prefix only": {"HTTP_AUTHORIZATION": f"Bearer {tenant.client_secret.rsplit('_', 1)[0]}_"},
        }
        bodies = {name: assert_error_shape(_get(**headers), 401) for name, headers in attempts.items()}
        assert len({body["detail"] for body in bodies.values()}) == 1, bodies  # no enumeration oracle

    @pytest.mark.parametrize(
        "headers",
        [
            lambda t: {"HTTP_X_API_SECRET": t.client_secret},  # secret without the id
            lambda t: {"HTTP_X_API_KEY": t.client_id},  # id without the secret
            lambda t: {"HTTP_X_API_KEY": t.client_id, "HTTP_X_API_SECRET": ""},
            lambda t: {"HTTP_AUTHORIZATION": f"Bearer {t.client_secret} {t.client_secret}"},
            lambda t: {"HTTP_AUTHORIZATION": f"Token {t.client_secret}"},
            lambda t: {"HTTP_AUTHORIZATION": f"Basic {t.client_secret}"},
            lambda t: {"HTTP_AUTHORIZATION": t.client_secret},
            lambda t: {"HTTP_AUTHORIZATION": f"Bearer {t.client_id}"},  # the public id is no credential
        ],
    )
    def test_malformed_or_partial_credentials_are_refused(self, tenant, headers):
        assert_error_shape(_get(**headers(tenant)), 401)

    @pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "Bearer  ", "Bearer\t"])
    def test_bearer_scheme_is_case_insensitive_and_whitespace_tolerant(self, tenant, scheme):
        separator = "" if scheme.endswith((" ", "\t")) else " "
        response = _get(HTTP_AUTHORIZATION=f"{scheme}{separator}{tenant.client_secret}")
        if scheme == "Bearer\t":  # a tab is not the scheme separator (RFC 7235): refused, not a 500
            assert_error_shape(response, 401)
        else:
            assert response.status_code == 200

    @pytest.mark.parametrize("param", ["api_key", "client_secret", "secret", "token"])
    def test_credentials_in_the_query_string_are_ignored(self, tenant, param):
        assert_error_shape(APIClient().get(f"{URL}?{param}={tenant.client_secret}"), 401)
        client = APIClient()
        assert_error_shape(
            client.get(f"{URL}?X-API-Key={tenant.client_id}&X-API-Secret={tenant.client_secret}"), 401
        )

    def test_the_pair_of_one_org_never_authenticates_as_another(self, tenant, other_tenant):
        response = _get(HTTP_X_API_KEY=other_tenant.client_id, HTTP_X_API_SECRET=other_tenant.client_secret)
        assert response.json()["data"]["id"] == str(other_tenant.organization.id)


@pytest.mark.django_db
def test_the_secret_exists_nowhere_in_the_database_and_is_shown_once(tenant):
    """Row 39: create a key through the API, then search every text column of every table."""
    created = tenant.client().post("/api/v1/api-keys", {"name": "Integration"}, format="json")
    assert created.status_code == 201
    assert created["Cache-Control"] == "no-store"  # no cache may keep the one copy
    secret = created.json()["data"]["client_secret"]
    key_id = created.json()["data"]["id"]
    found = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb', 'json')"
        )
        for table, column in cursor.fetchall():
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s', [f"%{secret[-20:]}%"]
            )
            if cursor.fetchone()[0]:
                found.append(f"{table}.{column}")
    assert found == []
    stored = ApiKey.objects.for_organization(tenant.organization).get(pk=key_id)
    assert len(stored.secret_hash) == 64 and secret.startswith(stored.secret_prefix)
    assert len(stored.secret_prefix) < len(secret) // 2
    listing = tenant.client().get("/api/v1/api-keys").json()
    detail = tenant.client().get(f"/api/v1/api-keys/{key_id}").json()
    assert secret not in str(listing) and secret not in str(detail)
    assert "client_secret" not in detail["data"]


@pytest.mark.django_db
def test_mass_assignment_on_api_key_create_is_ignored(tenant, other_tenant):
    """Row 29: client-chosen organization, ids, hashes and revocation are not assignable."""
    chosen_id = str(uuid.uuid4())
    response = tenant.client().post(
        "/api/v1/api-keys",
        {
            "name": "mass",
            "id": chosen_id,
            "organization": str(other_tenant.organization.id),
            "organization_id": str(other_tenant.organization.id),
            "client_id": "ci_chosen_by_attacker",
            "secret_prefix": "sk_attacker",
            "secret_hash": "0" * 64,
            "revoked_at": "2020-01-01T00:00:00Z",
            "last_used_at": "2020-01-01T00:00:00Z",
            "created_at": "2020-01-01T00:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    stored = ApiKey.objects.unscoped().get(pk=data["id"])
    assert stored.organization_id == tenant.organization.id
    assert str(stored.pk) != chosen_id
    assert stored.client_id != "ci_chosen_by_attacker" and stored.secret_hash != "0" * 64
    assert stored.revoked_at is None and stored.created_at.year > 2020
    assert not ApiKey.objects.for_organization(other_tenant.organization).filter(name="mass").exists()
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {data['client_secret']}")
    assert fresh.get(URL).json()["data"]["id"] == str(tenant.organization.id)


@pytest.mark.chaos
@pytest.mark.django_db(transaction=True)
def test_no_secret_or_token_reaches_the_logs(procs, live_env):
    """Row 41: drive a real gunicorn with secrets in every place a client might put them,
    then grep everything it logged (app log and access log)."""
    tenant = tenant_create("Log Grep", rate_limit_per_hour=10_000)
    token, _ = widget_token_issue(organization_id=tenant.organization.id, origin="https://shop.example")
    _web, url = procs.gunicorn(env=dict(live_env, LOG_LEVEL="DEBUG"))
    api = f"{url}/api/v1/organization"
    pair = {"X-API-Key": tenant.client_id, "X-API-Secret": tenant.client_secret}
    calls = [
        requests.get(api, headers=pair, timeout=10),
        requests.get(api, headers={"Authorization": f"Bearer {tenant.client_secret}"}, timeout=10),
        requests.get(
            api,
            headers={"X-API-Key": tenant.client_id, "X-API-Secret": tenant.client_secret + "x"},
            timeout=10,
        ),
        requests.get(f"{api}?api_key={tenant.client_secret}", timeout=10),
        requests.get(f"{api}?token={token}&client_secret={tenant.client_secret}", timeout=10),
        requests.get(api, headers={"Authorization": f"Bearer {token}"}, timeout=10),
        requests.get(api, headers={"Authorization": f"Bearer {token}x"}, timeout=10),
        requests.get(
            f"{url}/api/v1/nope?secret={tenant.client_secret}",
            headers={"Referer": f"{url}/?api_key={tenant.client_secret}"},
            timeout=10,
        ),
        requests.post(
            f"{url}/api/v1/api-keys",
            headers={**pair, "Content-Type": "application/json"},
            data=b"{not json",
            timeout=10,
        ),
    ]
    assert [response.status_code for response in calls] == [200, 200, 401, 401, 401, 403, 401, 404, 400]
    log = procs.log("web").read_text()
    assert "/api/v1/organization" in log  # the access log was written
    for secret in (tenant.client_secret, token, token.split(".")[1], tenant.client_secret.split("_", 2)[2]):
        assert secret not in log
    assert "Traceback" not in log
