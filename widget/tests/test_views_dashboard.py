"""Dashboard: widget list, configurator, preview and delete (Django test client)."""

import pytest
from django.urls import reverse

from assistants.models import Assistant
from organizations.models import ApiKey
from widget.models import Widget
from widget.services import widget_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


@pytest.fixture
def assistant(tenant):
    return Assistant.objects.create(organization=tenant.organization, name="Helper")


@pytest.fixture
def widget(tenant, assistant):
    return widget_create(organization=tenant.organization, assistant_id=assistant.pk, title="Help")


def form_data(widget, **overrides):
    data = {
        "assistant": str(widget.assistant_id),
        "title": "Acme help",
        "greeting": "Hello there!",
        "placeholder": "Ask away",
        "launcher_label": "Chat",
        "primary_color": "#ff6600",
        "position": "bottom-left",
        "suggested_questions": "What are your hours?\n\nHow do refunds work?",
        "allowed_domains": "https://shop.example.com",
        "show_sources": "on",
        "is_active": "on",
    }
    data.update(overrides)
    return data


def test_anonymous_and_foreign_users_cannot_reach_widgets(client, foreign_client, widget):
    for url in [
        reverse("widgets"),
        reverse("widget-configure", args=[widget.pk]),
        reverse("widget-preview", args=[widget.pk]),
    ]:
        assert client.get(url).status_code == 302
    for url in [
        reverse("widget-configure", args=[widget.pk]),
        reverse("widget-preview", args=[widget.pk]),
        reverse("widget-delete", args=[widget.pk]),
    ]:
        assert foreign_client.get(url).status_code == 404
    assert (
        foreign_client.post(reverse("widget-configure", args=[widget.pk]), form_data(widget)).status_code
        == 404
    )
    assert foreign_client.post(reverse("widget-delete", args=[widget.pk])).status_code == 404
    widget.refresh_from_db()
    assert widget.title == "Help"


def test_empty_states_lead_to_the_next_step(owner_client, tenant):
    page = owner_client.get(reverse("widgets"))
    assert b"Create an assistant first" in page.content
    Assistant.objects.create(organization=tenant.organization, name="Helper")
    page = owner_client.get(reverse("widgets"))
    assert b"No widget yet" in page.content and b"Create widget" in page.content


def test_create_widget_then_configure_it(owner_client, tenant, assistant):
    response = owner_client.post(reverse("widgets"), {"assistant": str(assistant.pk), "title": "Support"})
    widget = Widget.objects.for_organization(tenant.organization).get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "widget-configure", args=[widget.pk]
    )
    response = owner_client.post(reverse("widget-configure", args=[widget.pk]), form_data(widget))
    assert response.status_code == 302
    widget.refresh_from_db()
    assert widget.title == "Acme help" and widget.primary_color == "#ff6600"
    assert widget.position == "bottom-left"
    assert widget.suggested_questions == ["What are your hours?", "How do refunds work?"]
    assert widget.allowed_domains == ["https://shop.example.com"]
    assert widget.options["show_sources"] is True and widget.options["collect_feedback"] is False
    assert widget.is_active is True


def test_configurator_shows_snippet_and_real_widget_preview(owner_client, tenant, widget):
    page = owner_client.get(reverse("widget-configure", args=[widget.pk]))
    assert page.status_code == 200
    snippet = page.context["snippet"]
    assert f'data-config-id="{widget.pk}"' in snippet and f'data-client-id="{tenant.client_id}"' in snippet
    assert b"embed-snippet" in page.content and b"widget-preview" in page.content
    preview = owner_client.get(reverse("widget-preview", args=[widget.pk]))
    assert preview.status_code == 200
    assert b'src="/widget.js"' in preview.content and str(widget.pk).encode() in preview.content
    # Only the dashboard itself may frame the preview; every other page refuses framing.
    assert preview["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in preview["Content-Security-Policy"]
    assert page["X-Frame-Options"] == "DENY"


def test_invalid_settings_show_field_errors_and_change_nothing(owner_client, widget):
    response = owner_client.post(
        reverse("widget-configure", args=[widget.pk]),
        form_data(widget, primary_color="orange", allowed_domains="not a domain at all"),
    )
    assert response.status_code == 200
    assert response.context["form"].errors
    widget.refresh_from_db()
    assert widget.title == "Help" and widget.allowed_domains == []


def test_a_bare_host_is_stored_as_its_origin_and_shown_so(owner_client, widget):
    response = owner_client.post(
        reverse("widget-configure", args=[widget.pk]),
        form_data(widget, allowed_domains="shop.example\nlocalhost:8080"),
        follow=True,
    )
    assert response.status_code == 200
    widget.refresh_from_db()
    assert widget.allowed_domains == ["https://shop.example", "http://localhost:8080"]
    page = owner_client.get(reverse("widget-configure", args=[widget.pk])).content.decode()
    assert "https://shop.example\nhttp://localhost:8080" in page


def test_a_malformed_domain_is_explained_in_the_form(owner_client, widget):
    response = owner_client.post(
        reverse("widget-configure", args=[widget.pk]), form_data(widget, allowed_domains="shop example.com")
    )
    assert response.status_code == 200
    assert "must be a host like shop.example.com" in response.content.decode()
    widget.refresh_from_db()
    assert widget.allowed_domains == []


def test_assistant_of_another_organization_cannot_be_attached(owner_client, widget, other_tenant):
    foreign = Assistant.objects.create(organization=other_tenant.organization, name="Theirs")
    response = owner_client.post(
        reverse("widget-configure", args=[widget.pk]), form_data(widget, assistant=str(foreign.pk))
    )
    assert response.status_code == 200
    widget.refresh_from_db()
    assert widget.assistant_id != foreign.pk


def test_without_an_api_key_the_configurator_offers_to_create_one(owner_client, tenant, widget):
    ApiKey.objects.for_organization(tenant.organization).update(revoked_at="2026-01-01T00:00:00Z")
    page = owner_client.get(reverse("widget-configure", args=[widget.pk]))
    assert page.context["snippet"] is None and b"Create a widget key" in page.content
    # Only a POST creates it; a GET (a prefetch, a pasted link) is a 405, not a 500.
    assert owner_client.get(reverse("widget-client-key", args=[widget.pk])).status_code == 405
    owner_client.post(reverse("widget-client-key", args=[widget.pk]))
    page = owner_client.get(reverse("widget-configure", args=[widget.pk]))
    assert page.context["snippet"] is not None


def test_agent_can_look_but_not_change(agent_client, widget):
    assert agent_client.get(reverse("widget-configure", args=[widget.pk])).status_code == 200
    assert (
        agent_client.post(reverse("widget-configure", args=[widget.pk]), form_data(widget)).status_code == 403
    )
    assert agent_client.post(reverse("widget-delete", args=[widget.pk])).status_code == 403
    widget.refresh_from_db()
    assert widget.title == "Help"


def test_delete_widget(owner_client, tenant, widget):
    assert owner_client.get(reverse("widget-delete", args=[widget.pk])).status_code == 200
    owner_client.post(reverse("widget-delete", args=[widget.pk]))
    assert not Widget.objects.for_organization(tenant.organization).exists()


def test_widget_titles_are_escaped(owner_client, tenant, assistant):
    widget_create(
        organization=tenant.organization, assistant_id=assistant.pk, title='<img src=x onerror="alert(1)">'
    )
    page = owner_client.get(reverse("widgets"))
    assert b'<img src=x onerror="alert(1)">' not in page.content
    assert b"&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page.content
