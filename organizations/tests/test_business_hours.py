"""Business hours: when the team is at work, the Settings page (owners/admins; agents 403),
and what a handoff outside them tells the visitor."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from core.errors import ValidationFailed
from organizations import selectors, services

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

WEEKDAYS_9_TO_5 = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def _set(tenant, **overrides):
    values = {
        "timezone_name": "Europe/Paris",
        "hours": WEEKDAYS_9_TO_5,
        "holidays": ["2026-12-25"],
    } | overrides
    return services.business_hours_set(organization=tenant.organization, **values)


def test_open_closed_and_next_opening(tenant):
    assert selectors.business_hours_status(organization=tenant.organization).open  # none set: always open
    _set(tenant)
    organization = tenant.organization
    # Wednesday 2026-12-02 10:00 in Paris (09:00 UTC): open.
    assert selectors.business_hours_status(
        organization=organization, now=datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    ).open
    # The same day 17:30 Paris: closed, back Thursday 09:00 Paris.
    status = selectors.business_hours_status(
        organization=organization, now=datetime(2026, 12, 2, 16, 30, tzinfo=UTC)
    )
    assert not status.open and status.next_open.isoformat() == "2026-12-03T09:00:00+01:00"
    # Saturday: back Monday.
    status = selectors.business_hours_status(
        organization=organization, now=datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    )
    assert status.next_open.isoformat() == "2026-12-07T09:00:00+01:00"
    # Christmas (Friday) is a holiday: from Thursday evening, back Monday 28th.
    status = selectors.business_hours_status(
        organization=organization, now=datetime(2026, 12, 24, 18, 0, tzinfo=UTC)
    )
    assert status.next_open.isoformat() == "2026-12-28T09:00:00+01:00"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:00-12:00, 13:00-17:30", [["09:00", "12:00"], ["13:00", "17:30"]]),
        ("", []),
        ("00:00-24:00", [["00:00", "24:00"]]),
    ],
)
def test_ranges_parse(text, expected):
    assert services.business_hours_parse(text=text) == expected


@pytest.mark.parametrize("text", ["9-5", "17:00-09:00", "09:00-25:00", "09:00-12:00,a", "09:00-24:30"])
def test_bad_ranges_are_refused(text):
    with pytest.raises(ValueError):
        services.business_hours_parse(text=text)


def test_bad_timezone_and_holiday_are_refused_and_nothing_changes(tenant):
    for overrides in (
        {"timezone_name": "Mars/Olympus"},
        {"holidays": ["25/12/2026"]},
        {"hours": {"funday": [["09:00", "10:00"]]}},
    ):
        with pytest.raises(ValidationFailed):
            _set(tenant, **overrides)
    tenant.organization.refresh_from_db()
    assert tenant.organization.business_hours == {} and tenant.organization.business_timezone == "UTC"


def test_settings_page_owner_saves_agent_is_refused(owner_client, agent_client, tenant):
    url = reverse("settings-business-hours")
    assert agent_client.get(url).status_code == 403
    assert agent_client.post(url, {"timezone": "UTC", "mon": "09:00-17:00"}).status_code == 403
    tenant.organization.refresh_from_db()
    assert tenant.organization.business_hours == {}
    response = owner_client.post(
        url,
        {
            "timezone": "America/New_York",
            "mon": "09:00-12:00, 13:00-17:00",
            "fri": "10:00-16:00",
            "holidays": "2026-12-25\n",
        },
    )
    assert response.status_code == 302
    tenant.organization.refresh_from_db()
    assert tenant.organization.business_timezone == "America/New_York"
    assert tenant.organization.business_hours == {
        "mon": [["09:00", "12:00"], ["13:00", "17:00"]],
        "fri": [["10:00", "16:00"]],
    }
    assert tenant.organization.business_holidays == ["2026-12-25"]
    page = owner_client.get(url).content.decode()
    assert 'value="09:00-12:00, 13:00-17:00"' in page
    bad = owner_client.post(url, {"timezone": "Nowhere/Land", "tue": "late"})
    assert (
        bad.status_code == 200
        and "Unknown time zone" in bad.content.decode()
        or "not a range" in bad.content.decode()
    )
    tenant.organization.refresh_from_db()
    assert tenant.organization.business_timezone == "America/New_York"


def test_a_handoff_outside_business_hours_says_when_the_team_is_back(tenant, settings):
    from assistants.models import Assistant
    from chat import services as chat_services

    assistant = Assistant.objects.create(organization=tenant.organization, name="Helper")
    session = chat_services.session_create(organization=tenant.organization, assistant=assistant)
    api = tenant.client()
    open_now = api.post(f"/api/v1/sessions/{session.pk}/handoff", {}, format="json").json()["data"]
    assert open_now["team_available"] is True and open_now["team_back_at"] is None
    _set(tenant, hours={}, holidays=[])  # still always open
    services.business_hours_set(
        organization=tenant.organization,
        timezone_name="UTC",
        hours={"mon": [["00:00", "00:01"]]},  # practically always closed
        holidays=[],
    )
    closed = api.post(f"/api/v1/sessions/{session.pk}/handoff", {}, format="json").json()["data"]
    assert closed["team_available"] is False and closed["team_back_at"].endswith("+00:00")
