from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from organizations.services import api_key_create
from testkit.fixtures import tenant_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.without_redis]


def test_fifty_concurrent_requests_against_a_limit_of_twenty_let_exactly_twenty_through(live_server):
    tenant = tenant_create("Limited", rate_limit_per_hour=20)
    headers = {"X-API-Key": tenant.client_id, "X-API-Secret": tenant.client_secret}
    url = f"{live_server.url}/api/v1/organization"

    def call(_):
        response = requests.get(url, headers=headers, timeout=30)
        return response.status_code, response.headers, response.json()

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(call, range(50)))

    statuses = [status for status, _, _ in results]
    assert statuses.count(200) == 20
    assert statuses.count(429) == 30
    for status, headers_, body in results:
        assert headers_["X-RateLimit-Limit"] == "20"
        assert 0 < int(headers_["X-RateLimit-Reset"]) <= 3600
        assert headers_["RateLimit-Policy"] == '"org";q=20;w=3600'
        remaining = int(headers_["X-RateLimit-Remaining"])
        assert headers_["RateLimit"] == f'"org";r={remaining};t={headers_["X-RateLimit-Reset"]}'
        if status == 429:
            assert remaining == 0
            assert int(headers_["Retry-After"]) > 0
            assert body["status"] == "error" and body["status_code"] == 429
    remaining_values = sorted(int(h["X-RateLimit-Remaining"]) for s, h, _ in results if s == 200)
    assert remaining_values == list(range(20))


def test_all_keys_of_an_organization_share_one_bucket_and_others_are_unaffected(client):
    tenant = tenant_create("Shared", rate_limit_per_hour=3)
    other = tenant_create("Unaffected", rate_limit_per_hour=3)
    _second_key, second_secret = api_key_create(organization=tenant.organization, name="second")
    first = tenant.client()
    second = tenant.client(bearer=True)
    second.credentials(HTTP_AUTHORIZATION=f"Bearer {second_secret}")
    assert first.get("/api/v1/organization").status_code == 200
    assert second.get("/api/v1/organization").status_code == 200
    assert first.get("/api/v1/organization").status_code == 200
    limited = second.get("/api/v1/organization", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert limited.status_code == 429
    assert limited["X-RateLimit-Remaining"] == "0"
    ok = other.client().get("/api/v1/organization")
    assert ok.status_code == 200 and ok["X-RateLimit-Remaining"] == "2"
