"""R5/R14 (foundation part): the shared Redis stops during authenticated API traffic.

Documented behaviour (docs/security.md): API-key requests keep working — the key is
verified in Postgres (`last_used_at` too: it needs no cache), and the rate limiter degrades
to a per-process window with the same limit (fail open); widget-token requests fail closed
with 503 in the error shape; /readyz reports the cache as unavailable."""

from __future__ import annotations

import time

import pytest
import requests
from django.test import override_settings
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory

from core.cache_guard import cache_circuit_reset
from organizations.api_base import OrganizationAPIView
from testkit import processes
from testkit.fixtures import tenant_create
from tests.conftest import assert_error_shape
from widget.tokens import widget_token_issue

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]


def test_api_keys_keep_working_while_redis_is_down_and_recover_after(procs, live_env):
    redis_process, port = procs.redis()
    env = dict(live_env, REDIS_URL=f"redis://127.0.0.1:{port}/0")
    tenant = tenant_create("Redis Outage", rate_limit_per_hour=1000)
    headers = {"X-API-Key": tenant.client_id, "X-API-Secret": tenant.client_secret}
    _web, url = procs.gunicorn(env=env)

    before = [requests.get(f"{url}/api/v1/organization", headers=headers, timeout=10) for _ in range(5)]
    assert [r.status_code for r in before] == [200] * 5
    assert [int(r.headers["X-RateLimit-Remaining"]) for r in before] == [999, 998, 997, 996, 995]

    processes.process_stop(redis_process)  # the private Redis only, by pid

    during = []
    for _ in range(20):
        started = time.monotonic()
        response = requests.get(f"{url}/api/v1/organization", headers=headers, timeout=10)
        during.append((response, time.monotonic() - started))
    for response, _elapsed in during:
        assert response.status_code == 200, response.text
        assert response.json()["data"]["id"] == str(tenant.organization.id)
        assert response.headers["X-RateLimit-Limit"] == "1000"  # the degraded, per-process window
    bad = requests.get(
        f"{url}/api/v1/organization",
        headers={"X-API-Key": tenant.client_id, "X-API-Secret": "sk_x_y"},
        timeout=10,
    )
    assert_error_shape(bad, 401)
    ready = requests.get(f"{url}/readyz", timeout=10)
    assert ready.status_code == 503 and ready.json()["checks"]["cache"].startswith("unavailable")

    # Redis comes back on the same port (empty: no persistence); the shared limiter resumes.
    restarted, _ = processes.redis_server_start(port=port)
    procs.started.append(restarted)
    deadline = time.monotonic() + 20
    while True:
        response = requests.get(f"{url}/api/v1/organization", headers=headers, timeout=10)
        assert response.status_code == 200
        if int(response.headers["X-RateLimit-Remaining"]) == 999:  # counted in the fresh Redis
            break
        assert time.monotonic() < deadline, "the limiter never went back to Redis"
        time.sleep(0.5)
    # The cache is back (no worker runs in this test, so /readyz as a whole stays 503).
    assert requests.get(f"{url}/readyz", timeout=10).json()["checks"]["cache"] == "ok"
    log = procs.log("web").read_text()
    assert "Traceback" not in log
    assert tenant.client_secret not in log


class WidgetProbeApi(OrganizationAPIView):
    allow_widget_token = True

    def get(self, request):
        return Response({"ok": True})


def test_widget_tokens_fail_closed_and_api_keys_fail_open_when_the_limiter_cache_is_down(procs, tenant):
    redis_process, port = procs.redis()
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    factory = APIRequestFactory()
    token, _ = widget_token_issue(organization_id=tenant.organization.id)
    with override_settings(CACHES=caches):
        cache_circuit_reset()
        view = WidgetProbeApi.as_view()
        assert view(factory.get("/api/v1/probe", HTTP_AUTHORIZATION=f"Bearer {token}")).status_code == 200
        processes.process_stop(redis_process)
        try:
            widget = view(factory.get("/api/v1/probe", HTTP_AUTHORIZATION=f"Bearer {token}"))
            widget.render()
            assert widget.status_code == 503
            assert widget["Retry-After"] == "5"
            body = widget.data
            assert body["status"] == "error" and body["status_code"] == 503
            keyed = view(
                factory.get(
                    "/api/v1/probe", HTTP_X_API_KEY=tenant.client_id, HTTP_X_API_SECRET=tenant.client_secret
                )
            )
            assert keyed.status_code == 200
            assert keyed["X-RateLimit-Remaining"] == str(tenant.organization.rate_limit_per_hour - 1)
        finally:
            cache_circuit_reset()


def test_redis_down_during_chat_stores_the_answer_or_refuses_with_503_and_loses_nothing(procs, live_env):
    """R5: API-key chat keeps answering (offline answerer) while Redis is down; a widget
    visitor gets 503 before anything is stored; nothing accepted is lost."""
    from chat.models import Message

    redis_process, port = procs.redis()
    env = dict(live_env, REDIS_URL=f"redis://127.0.0.1:{port}/0", LLM_MODEL="")
    tenant = tenant_create("Redis Chat", rate_limit_per_hour=1000)
    headers = {"X-API-Key": tenant.client_id, "X-API-Secret": tenant.client_secret}
    _web, url = procs.gunicorn(env=env, workers=1)  # one worker: one embedder load
    assistant = requests.post(f"{url}/api/v1/assistants", json={"name": "Bot"}, headers=headers, timeout=30)
    assistant_id = assistant.json()["data"]["id"]
    session = requests.post(
        f"{url}/api/v1/sessions", json={"assistant_id": assistant_id}, headers=headers, timeout=30
    )
    session_id = session.json()["data"]["id"]
    token, _ = widget_token_issue(organization_id=tenant.organization.id, visitor_id="v_redis")
    visitor = {"Authorization": f"Bearer {token}"}
    visitor_session = requests.post(
        f"{url}/api/v1/sessions", json={"assistant_id": assistant_id}, headers=visitor, timeout=30
    )
    assert visitor_session.status_code == 201, visitor_session.text
    visitor_session_id = visitor_session.json()["data"]["id"]

    processes.process_stop(redis_process)

    answered = requests.post(
        f"{url}/api/v1/sessions/{session_id}/messages",
        json={"content": "Are you open today?"},
        headers=headers,
        timeout=60,
    )
    assert answered.status_code == 201, answered.text
    answer_id = answered.json()["data"]["id"]
    refused = requests.post(
        f"{url}/api/v1/sessions/{visitor_session_id}/messages",
        json={"content": "hello?"},
        headers=visitor,
        timeout=60,
    )
    assert_error_shape(refused, 503)
    assert int(refused.headers["Retry-After"]) >= 1

    organization_messages = Message.objects.for_organization(tenant.organization)
    assert organization_messages.filter(pk=answer_id, role="assistant").exists()  # acknowledged = stored
    assert organization_messages.filter(conversation_id=session_id, role="user").count() == 1
    assert not organization_messages.filter(
        conversation_id=visitor_session_id
    ).exists()  # refused = not taken

    restarted, _ = processes.redis_server_start(port=port)
    procs.started.append(restarted)
    deadline = time.monotonic() + 20
    while True:  # the circuit closes within its open window; the visitor is served again
        retry = requests.post(
            f"{url}/api/v1/sessions/{visitor_session_id}/messages",
            json={"content": "hello?"},
            headers=visitor,
            timeout=60,
        )
        if retry.status_code == 201:
            break
        assert_error_shape(retry, 503)
        assert time.monotonic() < deadline
        time.sleep(1)
    assert organization_messages.filter(conversation_id=visitor_session_id, role="user").count() == 1
    assert "Traceback" not in procs.log("web").read_text()
