import pytest
from rest_framework.test import APIClient

from widget.models import Widget
from widget.tests.conftest import assert_error
from widget.tokens import widget_token_issue

pytestmark = pytest.mark.django_db


def widgets_of(organization):
    return list(Widget.objects.for_organization(organization).values_list("id", flat=True))


def test_create_list_get_update_delete(api, tenant, assistant):
    created = api.post(
        "/api/v1/widgets/",
        {
            "assistant_id": str(assistant.id),
            "title": "Acme support",
            "greeting": "Hello!",
            "primary_color": "#0F766E",
            "position": "bottom-left",
            "launcher_label": "Ask us",
            "suggested_questions": ["What are your hours?", " Do you ship abroad? "],
            "allowed_domains": [
                "https://Shop.Example.com/",
                "http://localhost:8080",
                "Help.Example.com:8443",
            ],
            "options": {"instance": "shop-widget", "show_sources": False},
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "success" and body["status_code"] == 201
    data = body["data"]
    assert data["primary_color"] == "#0f766e"
    # A bare host means its https origin (SPEC, operator commands).
    assert data["allowed_domains"] == [
        "https://shop.example.com",
        "http://localhost:8080",
        "https://help.example.com:8443",
    ]
    assert data["suggested_questions"] == ["What are your hours?", "Do you ship abroad?"]
    assert data["assistant_id"] == str(assistant.id)
    assert f'data-client-id="{tenant.client_id}"' in data["embed_snippet"]
    assert f'data-config-id="{data["id"]}"' in data["embed_snippet"]
    assert 'data-instance-id="shop-widget"' in data["embed_snippet"]

    listed = api.get("/api/v1/widgets").json()["data"]
    assert listed["count"] == 1 and listed["results"][0]["id"] == data["id"]
    assert set(listed) == {"count", "next", "previous", "results"}

    patched = api.patch(
        f"/api/v1/widgets/{data['id']}", {"title": "New title", "primary_color": "#abc"}, format="json"
    )
    assert patched.status_code == 200
    assert patched.json()["data"]["title"] == "New title"
    assert patched.json()["data"]["primary_color"] == "#aabbcc"
    assert api.get(f"/api/v1/widgets/{data['id']}/").json()["data"]["title"] == "New title"

    deleted = api.delete(f"/api/v1/widgets/{data['id']}")
    assert deleted.status_code == 200 and deleted.json()["data"] is None
    assert widgets_of(tenant.organization) == []


def test_create_without_assistant_uses_the_default_one(api, tenant):
    created = api.post("/api/v1/widgets", {"title": "Default"}, format="json")
    assert created.status_code == 201
    assert created.json()["data"]["assistant_id"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"primary_color": "red"}, "primary_color"),
        ({"primary_color": "#12345g"}, "primary_color"),
        ({"primary_color": "#1234567"}, "primary_color"),
        ({"allowed_domains": ["shop example.com"]}, "allowed_domains"),
        ({"allowed_domains": ["shop.example.com/path"]}, "allowed_domains"),
        ({"allowed_domains": ["user@shop.example.com"]}, "allowed_domains"),
        ({"allowed_domains": ["javascript:alert(1)"]}, "allowed_domains"),
        ({"allowed_domains": ["https://shop.example.com/path"]}, "allowed_domains"),
        ({"allowed_domains": "https://shop.example.com"}, "allowed_domains"),
        ({"position": "top-center"}, "position"),
        ({"suggested_questions": [""]}, "suggested_questions"),
        ({"suggested_questions": ["x" * 201]}, "suggested_questions"),
        ({"suggested_questions": ["q"] * 9}, "suggested_questions"),
        ({"options": {"instance": "has spaces"}}, "options"),
        ({"options": {"unknown": 1}}, "options"),
        ({"options": {"show_sources": "yes"}}, "options"),
        ({"options": {"human_handoff": "sometimes"}}, "options"),
        ({"options": {"human_handoff": True}}, "options"),
        ({"title": ""}, "title"),
        ({"title": "x" * 101}, "title"),
        ({"assistant_id": "not-a-uuid"}, "assistant_id"),
        ({"organization": "someone-else"}, "organization"),
    ],
)
def test_validation_failures_are_400_with_field_errors(api, tenant, assistant, payload, field):
    body = assert_error(
        api.post("/api/v1/widgets/", {"assistant_id": str(assistant.id), **payload}, format="json"), 400
    )
    assert field in (body["data"] or {}), body
    assert widgets_of(tenant.organization) == []


def test_assistant_of_another_organization_is_refused_without_leaking(api, tenant, other_assistant):
    body = assert_error(
        api.post("/api/v1/widgets/", {"assistant_id": str(other_assistant.id)}, format="json"), 400
    )
    assert body["data"] == {"assistant_id": ["No such assistant."]}
    unknown = api.post(
        "/api/v1/widgets/", {"assistant_id": "00000000-0000-4000-8000-000000000000"}, format="json"
    )
    assert unknown.json() == body  # same answer as for an id that does not exist
    assert widgets_of(tenant.organization) == []


def test_patch_validation_failure_changes_nothing(api, widget):
    assert_error(
        api.patch(f"/api/v1/widgets/{widget.id}", {"title": "ok", "primary_color": "nope"}, format="json"),
        400,
    )
    widget.refresh_from_db()
    assert widget.title == "Acme help"


def test_cross_tenant_widgets_are_404_and_unchanged(other_api, widget):
    for method, extra in (
        ("get", {}),
        ("patch", {"data": {"title": "pwned"}, "format": "json"}),
        ("delete", {}),
    ):
        assert_error(getattr(other_api, method)(f"/api/v1/widgets/{widget.id}", **extra), 404)
    assert other_api.get("/api/v1/widgets/").json()["data"]["count"] == 0
    widget.refresh_from_db()
    assert widget.title == "Acme help"
    assert_error(other_api.get(f"/api/v1/widgets/{widget.id}/config"), 404)


def test_moving_a_widget_to_another_orgs_assistant_is_refused(api, widget, other_assistant):
    assert_error(
        api.patch(f"/api/v1/widgets/{widget.id}", {"assistant_id": str(other_assistant.id)}, format="json"),
        400,
    )
    widget.refresh_from_db()
    assert widget.assistant.organization_id == widget.organization_id


def test_public_config_with_api_key_and_widget_token(api, tenant, widget, other_widget):
    config = api.get(f"/api/v1/widgets/{widget.id}/config").json()["data"]
    assert config["title"] == "Acme help" and config["assistant_id"] == str(widget.assistant_id)
    assert "allowed_domains" not in config

    token, _ = widget_token_issue(organization_id=tenant.organization.id, widget_id=widget.id)
    browser = APIClient()
    browser.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert browser.get(f"/api/v1/widgets/{widget.id}/config").json()["data"] == config
    # Another organization's widget: 404, as if it did not exist.
    assert_error(browser.get(f"/api/v1/widgets/{other_widget.id}/config"), 404)
    # Widget tokens never reach management endpoints.
    assert_error(browser.get("/api/v1/widgets/"), 403)
    assert_error(browser.get(f"/api/v1/widgets/{widget.id}"), 403)
    assert_error(browser.patch(f"/api/v1/widgets/{widget.id}", {"title": "x"}, format="json"), 403)
    assert_error(browser.post("/api/v1/widgets/", {}, format="json"), 403)
    assert_error(browser.get("/api/v1/api-keys"), 403)


def test_unauthenticated_is_401(widget):
    assert_error(APIClient().get("/api/v1/widgets/"), 401)
    assert_error(APIClient().get(f"/api/v1/widgets/{widget.id}/config"), 401)


def test_the_talk_to_a_person_option_reaches_the_public_config(api, tenant, assistant):
    created = api.post(
        "/api/v1/widgets/",
        {"assistant_id": str(assistant.id), "options": {"human_handoff": "always"}},
        format="json",
    ).json()["data"]
    from widget.selectors import widget_public_config
    from widget.services import widget_update

    widget = Widget.objects.for_organization(tenant.organization).get(pk=created["id"])
    assert widget_public_config(widget=widget)["human_handoff"] == "always"
    widget_update(widget=widget, options={})
    assert widget_public_config(widget=widget)["human_handoff"] == "after_answer"  # the default


def test_the_public_config_says_when_the_team_is_away_and_back(api, tenant, widget):
    from datetime import UTC, datetime, timedelta

    from organizations.services import business_hours_set

    url = f"/api/v1/widgets/{widget.id}/config"
    config = api.get(url).json()["data"]
    assert config["team_available"] is True and config["team_back_at"] is None  # no hours: always open
    # Open only tomorrow 09:00-17:00 UTC: away now, back tomorrow at nine.
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[tomorrow.weekday()]
    business_hours_set(
        organization=tenant.organization,
        timezone_name="UTC",
        hours={weekday: [["09:00", "17:00"]]},
        holidays=[],
    )
    config = api.get(url).json()["data"]
    assert config["team_available"] is False
    assert config["team_back_at"] == f"{tomorrow.date().isoformat()}T09:00:00+00:00"
