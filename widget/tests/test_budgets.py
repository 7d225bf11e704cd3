"""Budgets that match who is calling (issue 14): API keys and visitors are limited
separately, one visitor or address is absorbed by its own budget, loading the widget is
never what gets refused, and every /api/ response shows the budget it counted against."""

import re
import time
import warnings

import pytest
from django.core import mail
from django.core.cache.backends.base import CacheKeyWarning
from rest_framework.test import APIClient

from organizations.budget_alerts import budget_alert_mail
from organizations.models import ApiKey, BudgetAlert
from organizations.services import api_key_revoke
from widget.services import widget_update
from widget.tests.conftest import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.without_redis]

MINT = "/api/v1/auth/widget-token"
HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit", "RateLimit-Policy")


def mint(tenant, widget=None, **extra):
    body = {"client_id": tenant.client_id}
    if widget is not None:
        body["config_id"] = str(widget.id)
    return APIClient().post(MINT, body, format="json", **extra)


def visitor_client(tenant, widget, **extra) -> APIClient:
    response = mint(tenant, widget, **extra)
    assert response.status_code == 200, response.content
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}", **extra)
    return client


def policy(response) -> str:
    for header in HEADERS:
        assert header in response, f"{header} missing on a {response.status_code}"
    name = re.match(r'"([^"]+)";q=(\d+);w=(\d+)$', response["RateLimit-Policy"]).group(1)
    remaining, reset = response["X-RateLimit-Remaining"], response["X-RateLimit-Reset"]
    assert response["RateLimit"] == f'"{name}";r={remaining};t={reset}'
    return name


def send(client, session_id, text="Hello"):
    return client.post(f"/api/v1/sessions/{session_id}/messages", {"content": text}, format="json")


def session_of(client, widget) -> str:
    response = client.post("/api/v1/sessions", {"assistant_id": str(widget.assistant_id)}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["data"]["id"]


def test_every_api_response_carries_the_headers_of_the_budget_it_counted_against(tenant, widget):
    assert policy(mint(tenant, widget)) == "widget-token-client"
    assert policy(APIClient().post(MINT, {}, format="json")) == "widget-token-ip"  # 400
    assert policy(APIClient().post(MINT, {"client_id": "ci_nope"}, format="json")) == "widget-token-client"
    bad_key = APIClient()
    bad_key.credentials(HTTP_X_API_KEY=tenant.client_id, HTTP_X_API_SECRET="sk_wrong")
    assert policy(assert_error_response(bad_key.get("/api/v1/organization"), 401)) == "ip"
    assert policy(assert_error_response(APIClient().get("/api/v1/assistants/"), 401)) == "ip"
    visitor = visitor_client(tenant, widget)
    assert policy(assert_error_response(visitor.get("/api/v1/assistants/"), 403)) == "visitor"
    assert policy(visitor.get(f"/api/v1/widgets/{widget.id}/config")) == "visitor"
    assert policy(assert_error_response(APIClient().get("/api/v1/no-such-thing"), 404)) == "ip"
    assert policy(tenant.client().get("/api/v1/organization")) == "org"
    # Unauthenticated answers count per IP, and run out like any budget.
    limited = None
    for _ in range(400):
        limited = APIClient().get("/api/v1/assistants/", REMOTE_ADDR="198.51.100.200")
        if limited.status_code == 429:
            break
    assert_error(limited, 429)
    assert policy(limited) == "ip" and int(limited["Retry-After"]) > 0


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", response.content.decode()))


def assert_error_response(response, status):
    assert_error(response, status)
    return response


def test_visitors_never_use_the_organizations_api_budget(tenant, widget):
    tenant.organization.rate_limit_per_hour = 5
    tenant.organization.save()
    visitor = visitor_client(tenant, widget)
    for _ in range(20):
        assert visitor.get(f"/api/v1/widgets/{widget.id}/config").status_code == 200
    session_id = session_of(visitor, widget)
    assert visitor.get(f"/api/v1/sessions/{session_id}/messages").status_code == 200
    api = tenant.client().get("/api/v1/organization")
    assert api.status_code == 200 and api["X-RateLimit-Remaining"] == "4"


def test_api_budget_exhausted_the_widget_still_works(tenant, widget):
    tenant.organization.rate_limit_per_hour = 2
    tenant.organization.save()
    api = tenant.client()
    statuses = [api.get("/api/v1/organization").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    visitor = visitor_client(tenant, widget)
    assert visitor.get(f"/api/v1/widgets/{widget.id}/config").status_code == 200
    session_id = session_of(visitor, widget)
    assert send(visitor, session_id).status_code == 201


def test_one_abusive_visitor_is_absorbed_by_its_own_budget(tenant, widget, settings):
    """Found by a black-box run: 70 config requests from one token took every new visitor
    and the organization's API key down with it."""
    # Budgets count in fixed windows: 70 requests straddling a window's end are counted in two
    # windows and all pass (a full run at load 8 once took that long across a minute's end).
    # An hour's window, entered at least a minute before its end.
    settings.WIDGET_RATE_PER_VISITOR = "60/h"
    if (left := 3600 - time.time() % 3600) < 60:
        time.sleep(left + 1)
    abuser = visitor_client(tenant, widget, REMOTE_ADDR="203.0.113.66")
    statuses = [abuser.get(f"/api/v1/widgets/{widget.id}/config").status_code for _ in range(70)]
    assert statuses.count(200) == 60 and statuses.count(429) == 10
    newcomer = visitor_client(tenant, widget, REMOTE_ADDR="203.0.113.7")
    assert newcomer.get(f"/api/v1/widgets/{widget.id}/config").status_code == 200
    api = tenant.client().get("/api/v1/organization")
    assert api.status_code == 200
    assert api["X-RateLimit-Remaining"] == str(tenant.organization.rate_limit_per_hour - 1)


def test_sending_too_fast_gets_a_readable_busy_answer_and_others_still_send(tenant, widget, settings):
    settings.WIDGET_MESSAGE_RATE_PER_VISITOR = "2/m"
    visitor = visitor_client(tenant, widget)
    session_id = session_of(visitor, widget)
    assert [send(visitor, session_id, f"q{n}").status_code for n in range(2)] == [201, 201]
    refused = send(visitor, session_id, "q3")
    body = assert_error(refused, 429)
    assert policy(refused) == "visitor-messages"
    assert re.search(r"try again in \d+ s\.$", body["detail"])
    assert int(refused["Retry-After"]) > 0
    other = visitor_client(tenant, widget, REMOTE_ADDR="192.0.2.44")
    assert send(other, session_of(other, widget)).status_code == 201


def test_the_widget_ceiling_refuses_sends_only_and_never_loading(tenant, widget, settings):
    settings.WIDGET_MESSAGE_RATE_PER_WIDGET = "2/h"
    settings.WIDGET_MESSAGE_RATE_PER_VISITOR = "1/m"
    first = visitor_client(tenant, widget, REMOTE_ADDR="192.0.2.1")
    first_session = session_of(first, widget)
    assert send(first, first_session).status_code == 201
    # Sends a visitor's own budget refuses never reach the widget's ceiling.
    for _ in range(5):
        assert send(first, first_session).status_code == 429
    second = visitor_client(tenant, widget, REMOTE_ADDR="192.0.2.2")
    assert send(second, session_of(second, widget)).status_code == 201
    third = visitor_client(tenant, widget, REMOTE_ADDR="192.0.2.3")
    busy = send(third, session_of(third, widget))
    body = assert_error(busy, 429)
    assert policy(busy) == "widget-messages"
    assert body["detail"].startswith("This chat is busy right now - try again in ")
    # Loading still works for everyone, new visitors included.
    assert third.get(f"/api/v1/widgets/{widget.id}/config").status_code == 200
    fourth = visitor_client(tenant, widget, REMOTE_ADDR="192.0.2.4")
    assert fourth.get(f"/api/v1/widgets/{widget.id}/config").status_code == 200
    assert APIClient().get("/widget.js").status_code == 200


def test_mint_budget_keeps_a_reserve_for_new_visitors(tenant, widget, settings):
    """Found by a black-box run: 330 mints from six addresses made every new visitor wait
    Retry-After: 1462. Addresses that keep minting get only the first 80 % of the budget."""
    settings.WIDGET_TOKEN_RATE_PER_CLIENT = "10/h"
    settings.WIDGET_TOKEN_RATE_PER_IP = "100/h"
    settings.WIDGET_TOKEN_NEW_VISITOR_RESERVE_PERCENT = 20
    statuses = [
        mint(tenant, widget, REMOTE_ADDR=f"203.0.113.{address}").status_code
        for _ in range(10)
        for address in range(3)
    ]
    assert statuses.count(200) == 8
    assert mint(tenant, widget, REMOTE_ADDR="198.51.100.1").status_code == 200
    assert mint(tenant, widget, REMOTE_ADDR="198.51.100.2").status_code == 200
    refused = mint(tenant, widget, REMOTE_ADDR="198.51.100.3")  # the reserve is used up too
    assert_error(refused, 429)
    assert policy(refused) == "widget-token-client"
    assert tenant.client().get("/api/v1/organization").status_code == 200


def test_a_token_stops_working_when_its_widget_is_switched_off(tenant, widget):
    visitor = visitor_client(tenant, widget)
    assert visitor.get(f"/api/v1/widgets/{widget.id}/config").status_code == 200
    widget_update(widget=widget, is_active=False)
    assert_error(visitor.get(f"/api/v1/widgets/{widget.id}/config"), 401)
    assert_error(visitor.post("/api/v1/sessions", {}, format="json"), 401)


def test_a_token_stops_working_when_its_client_id_key_is_revoked(tenant, widget):
    visitor = visitor_client(tenant, widget)
    session_id = session_of(visitor, widget)
    api_key_revoke(
        api_key=ApiKey.objects.for_organization(tenant.organization).get(client_id=tenant.client_id)
    )
    assert_error(visitor.get(f"/api/v1/sessions/{session_id}/messages"), 401)


def test_owner_is_told_at_80_and_100_percent_once_per_window(tenant, settings, client):
    tenant.organization.rate_limit_per_hour = 5
    tenant.organization.save()
    api = tenant.client()
    for _ in range(7):
        api.get("/api/v1/organization")
    alerts = list(BudgetAlert.objects.for_organization(tenant.organization).order_by("percent"))
    assert [(alert.policy, alert.percent, alert.used, alert.limit) for alert in alerts] == [
        ("org", 80, 4, 5),
        ("org", 100, 5, 5),
    ]
    assert budget_alert_mail(alert_id=str(alerts[1].pk)) == 1
    assert budget_alert_mail(alert_id=str(alerts[1].pk)) == 0  # a redelivered task: no second email
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [tenant.owner.email]
    assert "100% of a rate budget" in mail.outbox[0].subject
    assert "API requests (all API keys)" in mail.outbox[0].body and "5 of 5 per hour" in mail.outbox[0].body
    client.force_login(tenant.owner)
    overview = client.get("/").content.decode()
    assert "100 % of a budget used:" in overview and "API requests (all API keys)" in overview
    usage = text_of(client.get("/settings/usage/"))
    assert "API requests (all API keys): 5 of 5 this hour (2 refused)" in usage


def test_usage_page_lists_every_budget_of_the_organization_only(tenant, other_tenant, widget, client):
    visitor = visitor_client(tenant, widget)
    send(visitor, session_of(visitor, widget))
    client.force_login(tenant.owner)
    page = text_of(client.get("/settings/usage/"))
    assert "Visitor messages, widget “Acme help”: 1 of 30,000 this hour" in page
    assert f"New visitor tokens, client id {tenant.client_id}: 1 of 6,000 this hour" in page
    assert other_tenant.client_id not in page


def test_each_crossing_enqueues_one_email_task_on_the_real_broker(tenant, django_capture_on_commit_callbacks):
    from organizations.tests.test_llm_budget import _default_queue_tasks

    tenant.organization.rate_limit_per_hour = 5
    tenant.organization.save()
    _default_queue_tasks()
    api = tenant.client()
    for _ in range(8):
        with django_capture_on_commit_callbacks(execute=True):
            api.get("/api/v1/organization")
    alerts = {
        alert.percent: str(alert.pk) for alert in BudgetAlert.objects.for_organization(tenant.organization)
    }
    assert _default_queue_tasks() == [
        ("organizations.tasks.budget_alert_mail", [alerts[80]]),
        ("organizations.tasks.budget_alert_mail", [alerts[100]]),
    ]


def test_overview_banner_also_tells_about_the_daily_ai_budget(tenant, client):
    from organizations.services import llm_usage_record

    tenant.organization.llm_daily_token_budget = 1_000
    tenant.organization.save()
    llm_usage_record(organization=tenant.organization, prompt_tokens=850, completion_tokens=0)
    client.force_login(tenant.owner)
    page = text_of(client.get("/"))
    assert "85 % of today's AI budget used: 850 of 1,000 tokens." in page


@pytest.mark.parametrize("store", ["redis", "postgres"])
def test_a_visitor_id_of_any_shape_has_its_own_budget_under_a_key_that_names_nobody(
    tenant, widget, settings, store
):
    """A visitor's budget key holds a keyed hash of the visitor id, not the id: ids with spaces,
    control characters or 300 characters raise no CacheKeyWarning (Redis) and no DataError
    (Postgres: before, a 503 for every widget until the counter store's circuit closed)."""
    from django.core.cache import caches

    from supportai.models import RateCounter
    from widget.tokens import widget_token_issue

    if store == "redis" and not settings.REDIS_URL:
        pytest.skip("no Redis in this configuration (make test runs both)")
    settings.RATE_COUNTER_STORE = store
    settings.WIDGET_RATE_PER_VISITOR = "3/h"
    api_key = ApiKey.objects.for_organization(tenant.organization).get(client_id=tenant.client_id)
    odd = ["visitor with spaces", "ctl\x01\x7f\n\tend", "v" * 300]

    def client_for(visitor_id: str) -> APIClient:
        token, _ = widget_token_issue(
            organization_id=tenant.organization.id,
            widget_id=widget.id,
            visitor_id=visitor_id,
            api_key_id=api_key.pk,
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    config = f"/api/v1/widgets/{widget.id}/config"
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheKeyWarning)  # it fails the test
        for visitor_id in odd:
            client = client_for(visitor_id)
            statuses = [client.get(config).status_code for _ in range(4)]
            assert statuses == [200, 200, 200, 429], visitor_id
            assert policy(client.get(config)) == "visitor"
    if store == "postgres":
        keys = list(RateCounter.objects.values_list("key", flat=True))
    else:
        cache = caches[settings.RATELIMIT_USE_CACHE]
        client = cache._cache.get_client(write=False)
        keys = [key.decode() for key in client.scan_iter(match="*rc:visitor:*", count=1000)]
    visitor_keys = [key for key in keys if "visitor:" in key]
    assert len(visitor_keys) >= len(odd)
    assert not any(
        str(tenant.organization.pk) in key or "visitor with" in key or "vvvv" in key for key in keys
    )
    assert all(len(key) < 100 for key in keys)


@pytest.mark.django_db(transaction=True)  # autocommit, as in production: the error alone shows
def test_a_249_character_address_on_the_reset_form_does_not_take_the_counters_down(tenant, widget, settings):
    """The reset form's counter key (policy "reset-mail" and the address) was stored as it
    came: past the counter table's 250 characters Postgres refused it, which opened the
    counter store's circuit, and the next visitor's widget token (fail closed) got a 503."""
    settings.RATE_COUNTER_STORE = "postgres"
    address = "a" * 64 + "@" + "b" * 60 + "." + "c" * 60 + "." + "d" * 50 + ".example.com"
    assert len(address) == 249
    response = APIClient().post("/password-reset/", {"email": address})
    assert (response.status_code, response["Location"]) == (302, "/password-reset/sent/")
    assert mint(tenant, widget).status_code == 200
