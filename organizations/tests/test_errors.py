import pytest
from rest_framework.test import APIClient

pytestmark = [pytest.mark.django_db, pytest.mark.without_redis]


def assert_error_shape(response, status_code):
    assert response.status_code == status_code, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"status", "status_code", "detail", "data"}
    assert body["status"] == "error" and body["status_code"] == status_code
    return body


def test_unknown_api_path_is_json_404(api):
    assert_error_shape(api.get("/api/v1/does-not-exist"), 404)
    assert_error_shape(APIClient().get("/api/nothing/here/"), 404)
    assert_error_shape(APIClient().get("/api"), 404)  # the API's root, without its slash
    assert not APIClient().get("/apiary")["Content-Type"].startswith("application/json")  # not the API


def test_any_case_of_the_api_prefix_answers_in_the_error_shape(api):
    """`/API/…` matched no URL and fell to the dashboard's HTML 404 page; a client that typed
    it is an API client all the same."""
    for path in ("/API/v1/sessions", "/Api/v1/organization/", "/aPi/nothing", "/API", "/API/"):
        body = assert_error_shape(api.get(path), 404)
        assert body["detail"] == "Not found."
    assert_error_shape(api.post("/API/v1/sessions", {}, format="json"), 404)
    assert_error_shape(APIClient().delete("/Api/v1/api-keys/x"), 404)
    # Counted and labelled like any unknown /api/ URL (the unauthenticated budget's headers).
    assert "X-RateLimit-Limit" in APIClient().get("/API/v1/sessions")
    assert not APIClient().get("/APIary")["Content-Type"].startswith("application/json")  # not the API


def test_a_doubled_leading_slash_is_still_an_api_path(api):
    """`GET //api/v1/sessions` (a base URL ending in "/" joined to "/api/…"): the test client
    would read "//api" as a host, so the path is given as a server receives it."""
    response = api.get("/", PATH_INFO="//api/v1/sessions")
    assert assert_error_shape(response, 404)["detail"] == "Not found."


def test_unknown_object_is_404_with_same_shape(api):
    assert_error_shape(api.get("/api/v1/api-keys/00000000-0000-0000-0000-000000000000"), 404)


def test_method_not_allowed_is_json(api):
    body = assert_error_shape(api.put("/api/v1/organization", {}, format="json"), 405)
    assert "PUT" in body["detail"]


def test_bad_json_is_400(api):
    response = api.post("/api/v1/api-keys", data="{not json", content_type="application/json")
    assert_error_shape(response, 400)


def test_unsupported_media_type_is_json(api):
    response = api.post("/api/v1/api-keys", data="<x/>", content_type="application/xml")
    assert_error_shape(response, 415)


def test_oversized_body_is_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api.post(
        "/api/v1/api-keys", data='{"name": "%s"}' % ("x" * 5000), content_type="application/json"
    )
    assert_error_shape(response, 413)


def test_csrf_failure_on_api_path_is_json(client, tenant):
    csrf_client = APIClient(enforce_csrf_checks=True)
    csrf_client.force_login(tenant.owner)
    # Session-authenticated posts are not an API credential: refused as JSON, never HTML.
    response = csrf_client.post("/api/v1/api-keys", {"name": "x"}, format="json")
    assert response.status_code in (401, 403)
    assert response.json()["status"] == "error"


def test_health_endpoints(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    # Reachable database, cache and broker are not enough: no worker consumes here, so the
    # service cannot ingest anything and is not ready (the stack test sees it turn ready).
    ready = client.get("/readyz")
    assert ready.status_code == 503, ready.content
    checks = ready.json()["checks"]
    assert {name: checks[name] for name in ("database", "cache", "broker")} == {
        "database": "ok",
        "cache": "ok",
        "broker": "ok",
    }
    assert checks["worker"].startswith("unavailable: no worker consumed a heartbeat")


def test_openapi_schema_and_docs(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/organization/" in schema.content
    assert b"/api/v1/organization:" not in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    # Served from our own static files under the dashboard's CSP, never from a CDN.
    assert b"cdn.jsdelivr" not in docs.content and b"/static/drf_spectacular_sidecar/" in docs.content
    assert "script-src 'self'" in docs["Content-Security-Policy"]
