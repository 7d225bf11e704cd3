"""The daily LLM token budget's meter, alerts, configuration and dashboard card."""

import json
import logging
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse

from core.errors import ValidationFailed
from core.tenancy import UnscopedQueryError
from organizations import selectors, services
from organizations.models import AuditEvent, LLMUsageDay, Organization

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def _budget(organization, tokens):
    organization.llm_daily_token_budget = tokens
    organization.save(update_fields=["llm_daily_token_budget"])


def test_new_organizations_get_the_configured_default(settings):
    settings.LLM_DAILY_TOKEN_BUDGET = 12_345
    organization = services.organization_create(name="Default Budget")
    assert organization.llm_daily_token_budget == 12_345
    unlimited = services.organization_create(name="No Limit", llm_daily_token_budget=None)
    assert unlimited.llm_daily_token_budget is None


def test_usage_is_recorded_per_organization_and_day(tenant, other_tenant):
    services.llm_usage_record(
        organization=tenant.organization, prompt_tokens=100, completion_tokens=20, cost=0.0015
    )
    total = services.llm_usage_record(
        organization=tenant.organization, prompt_tokens=50, completion_tokens=5, cost=0.0005
    )
    assert total == 175
    row = LLMUsageDay.objects.for_organization(tenant.organization).get()
    assert (row.day, row.prompt_tokens, row.completion_tokens, row.calls) == (
        selectors.utc_today(),
        150,
        25,
        2,
    )
    assert row.cost == Decimal("0.002")
    assert not LLMUsageDay.objects.for_organization(other_tenant.organization).exists()
    status = selectors.llm_budget_status(organization=other_tenant.organization)
    assert status.used == 0 and not status.exhausted


def test_the_meter_is_tenant_scoped():
    with pytest.raises(UnscopedQueryError):
        LLMUsageDay.objects.all()
    with pytest.raises(UnscopedQueryError):
        LLMUsageDay.objects.create(day=selectors.utc_today())


def test_the_raw_upsert_names_the_models_table():
    assert LLMUsageDay._meta.db_table in services._USAGE_ADD_SQL


@pytest.mark.django_db(transaction=True)
def test_concurrent_records_add_up_exactly(tenant):
    organization = tenant.organization
    errors = []

    def record():
        try:
            for _ in range(10):
                services.llm_usage_record(organization=organization, prompt_tokens=7, completion_tokens=3)
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=record) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    row = LLMUsageDay.objects.for_organization(organization).get()
    assert (row.calls, row.prompt_tokens, row.completion_tokens) == (60, 420, 180)


def test_status_reports_exhaustion_and_reset(tenant):
    organization = tenant.organization
    _budget(organization, 100)
    services.llm_usage_record(organization=organization, prompt_tokens=60, completion_tokens=39)
    status = selectors.llm_budget_status(organization=organization)
    assert (status.used, status.remaining, status.percent, status.exhausted) == (99, 1, 99, False)
    services.llm_usage_record(organization=organization, prompt_tokens=1, completion_tokens=0)
    status = selectors.llm_budget_status(organization=organization)
    assert status.exhausted and status.remaining == 0
    assert 1 <= status.resets_in <= 86_400
    _budget(organization, 0)
    assert selectors.llm_budget_status(organization=Organization.objects.get(pk=organization.pk)).exhausted


def test_yesterdays_usage_does_not_count_today(tenant):
    organization = tenant.organization
    _budget(organization, 100)
    services.llm_usage_record(organization=organization, prompt_tokens=500, completion_tokens=0)
    LLMUsageDay.objects.for_organization(organization).update(day=selectors.utc_today() - timedelta(days=1))
    assert not selectors.llm_budget_status(organization=organization).exhausted
    assert services.llm_usage_record(organization=organization, prompt_tokens=5, completion_tokens=0) == 5


def test_seconds_until_utc_midnight():
    assert selectors.seconds_until_utc_midnight(now=datetime(2025, 3, 1, 23, 59, 30, tzinfo=UTC)) == 30
    assert selectors.seconds_until_utc_midnight(now=datetime(2025, 3, 1, 0, 0, 0, tzinfo=UTC)) == 86_400
    assert (
        selectors.seconds_until_utc_midnight(now=datetime(2025, 3, 1, 23, 59, 59, 999_000, tzinfo=UTC)) == 1
    )


def test_alerts_are_logged_once_at_80_and_100_percent(tenant, caplog):
    organization = tenant.organization
    _budget(organization, 1_000)
    caplog.set_level(logging.WARNING, logger="organizations.services")

    def alerts():
        return [r.getMessage() for r in caplog.records if "LLM budget alert" in r.getMessage()]

    services.llm_usage_record(organization=organization, prompt_tokens=700, completion_tokens=0)
    assert alerts() == []
    services.llm_usage_record(organization=organization, prompt_tokens=100, completion_tokens=0)  # 80%
    services.llm_usage_record(organization=organization, prompt_tokens=100, completion_tokens=0)  # 90%
    assert len(alerts()) == 1 and "80%" in alerts()[0] and organization.slug in alerts()[0]
    services.llm_usage_record(organization=organization, prompt_tokens=150, completion_tokens=0)  # 105%
    services.llm_usage_record(organization=organization, prompt_tokens=150, completion_tokens=0)  # 120%
    assert len(alerts()) == 2 and "100%" in alerts()[1] and "00:00 UTC" in alerts()[1]
    assert LLMUsageDay.objects.for_organization(organization).get().alerted_percent == 100


def test_alert_never_logs_secrets(tenant, caplog):
    _budget(tenant.organization, 10)
    caplog.set_level(logging.WARNING, logger="organizations.services")
    services.llm_usage_record(organization=tenant.organization, prompt_tokens=10, completion_tokens=0)
    text = caplog.text
    assert "LLM budget alert" in text
    assert tenant.client_secret not in text and tenant.client_id not in text


@pytest.mark.parametrize("bad", [-1, "-5", "abc", "1.5", 1.5, True, 2**31, "", [1]])
def test_bad_budgets_are_refused_with_a_clear_error(bad):
    with pytest.raises(ValidationFailed) as raised:
        services.llm_daily_token_budget_clean(bad)
    assert "llm_daily_token_budget must be a whole number of tokens" in raised.value.message
    assert raised.value.details == {
        "llm_daily_token_budget": ["Enter a whole number of tokens, 0 or more, or 'unlimited'."]
    }


@pytest.mark.parametrize(
    ("given", "expected"),
    [(0, 0), ("0", 0), ("2_000_000", 2_000_000), (" 500 ", 500), ("unlimited", None), (None, None)],
)
def test_good_budgets_are_accepted(given, expected):
    assert services.llm_daily_token_budget_clean(given) == expected


def test_create_organization_command_takes_a_budget():
    def create(name, *extra):
        out = StringIO()
        call_command(
            "create_organization",
            "--name",
            name,
            "--owner-email",
            f"owner@{name.lower()}.example",
            "--owner-password",
            "pw-long-enough",
            "--json",
            *extra,
            stdout=out,
        )
        return Organization.objects.get(pk=json.loads(out.getvalue())["id"])

    assert create("Budgeted", "--llm-daily-token-budget", "5000").llm_daily_token_budget == 5000
    assert create("Unlimited", "--llm-daily-token-budget", "unlimited").llm_daily_token_budget is None
    with pytest.raises(CommandError, match="whole number of tokens"):
        create("Broken", "--llm-daily-token-budget", "lots")
    assert not Organization.objects.filter(name="Broken").exists()


def test_set_llm_budget_command(tenant):
    out = StringIO()
    call_command("set_llm_budget", "--org", tenant.organization.slug, "--tokens", "0", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {"slug": tenant.organization.slug, "llm_daily_token_budget": 0}
    tenant.organization.refresh_from_db()
    assert tenant.organization.llm_daily_token_budget == 0
    with pytest.raises(CommandError, match="whole number of tokens"):
        call_command("set_llm_budget", "--org", tenant.organization.slug, "--tokens", "-3")
    with pytest.raises(CommandError, match="No organization"):
        call_command("set_llm_budget", "--org", "nope", "--tokens", "10")
    tenant.organization.refresh_from_db()
    assert tenant.organization.llm_daily_token_budget == 0
    # The change is in the organization's audit log, once: the same value again changes nothing.
    call_command("set_llm_budget", "--org", tenant.organization.slug, "--tokens", "0", stdout=StringIO())
    (event,) = AuditEvent.objects.for_organization(tenant.organization).filter(action="settings.updated")
    assert event.actor == "manage.py set_llm_budget" and event.target_id == str(tenant.organization.pk)
    assert event.changes["llm_daily_budget"][1] == 0


@pytest.mark.parametrize("value", ["abc", "-1", "99999999999"])
def test_bad_setting_stops_the_process_with_a_clear_error(tmp_path, value):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SUPPORTAI_DATA_DIR": str(tmp_path),
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
        "LLM_DAILY_TOKEN_BUDGET": value,
    }
    result = subprocess.run(
        [sys.executable, "-c", "import supportai.settings"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "LLM_DAILY_TOKEN_BUDGET must be a whole number of tokens" in result.stderr
    assert repr(value) in result.stderr


def test_setting_is_read_from_the_environment(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SUPPORTAI_DATA_DIR": str(tmp_path),
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
        "LLM_DAILY_TOKEN_BUDGET": "750_000",
    }
    code = "import supportai.settings as s; print(s.LLM_DAILY_TOKEN_BUDGET)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.stdout.strip() == "750000", result.stderr


def test_owner_sees_todays_usage_against_the_budget(tenant, owner_client, other_tenant):
    _budget(tenant.organization, 10_000)
    services.llm_usage_record(organization=tenant.organization, prompt_tokens=8_000, completion_tokens=500)
    services.llm_usage_record(
        organization=other_tenant.organization, prompt_tokens=77_777, completion_tokens=0
    )
    page = owner_client.get(reverse("settings-organization")).content.decode()
    assert "AI usage today" in page
    assert "8,500" in page and "of 10,000 tokens today" in page
    assert "77,777" not in page


# --- alert emails ---------------------------------------------------------------------------


def _default_queue_tasks() -> list[tuple[str, list]]:
    """(task name, args) of every message waiting on the real broker's `default` queue; drains it."""
    from supportai.celery import app

    found = []
    with app.connection_for_read() as connection:
        queue = connection.SimpleQueue("default")
        try:
            while True:
                try:
                    message = queue.get(block=True, timeout=0.5)
                except queue.Empty:
                    break
                found.append((message.headers["task"], json.loads(message.body)[0]))
                message.ack()
        finally:
            queue.close()
    return found


def test_crossing_80_and_100_percent_enqueues_one_alert_email_each(
    tenant, django_capture_on_commit_callbacks
):
    organization = tenant.organization
    _budget(organization, 1_000)
    _default_queue_tasks()
    for tokens in (700, 100, 100, 150, 150):  # 70%, 80%, 90%, 105%, 120%
        with django_capture_on_commit_callbacks(execute=True):
            services.llm_usage_record(organization=organization, prompt_tokens=tokens, completion_tokens=0)
    assert _default_queue_tasks() == [
        ("organizations.tasks.llm_budget_alert_mail", [str(organization.pk), 80, 800, 1_000]),
        ("organizations.tasks.llm_budget_alert_mail", [str(organization.pk), 100, 1_050, 1_000]),
    ]


def test_alert_email_goes_to_owners_and_admins_only(tenant, other_tenant, mailoutbox):
    from organizations.tasks import llm_budget_alert_mail_task
    from testkit.fixtures import member_add

    admin = member_add(tenant, role="admin")
    member_add(tenant, role="agent")
    told = llm_budget_alert_mail_task(str(tenant.organization.pk), 80, 800_000, 1_000_000)
    assert told == 2 and len(mailoutbox) == 1
    message = mailoutbox[0]
    assert sorted(message.to) == sorted([tenant.owner.email, admin.email])
    assert other_tenant.owner.email not in message.to
    assert "80%" in message.subject and tenant.organization.name in message.subject
    assert "800,000 of 1,000,000 tokens" in message.body and "At 100%" in message.body
    assert tenant.client_secret not in message.body and tenant.client_id not in message.body

    llm_budget_alert_mail_task(str(tenant.organization.pk), 100, 1_000_100, 1_000_000)
    assert "HTTP 429" in mailoutbox[1].body and "Until 00:00 UTC" in mailoutbox[1].body


def test_alert_email_subject_stays_one_line_whatever_the_organization_name(tenant, mailoutbox):
    from organizations.tasks import llm_budget_alert_mail_task

    tenant.organization.name = "Evil\r\nBcc: victim@example.com"
    tenant.organization.save(update_fields=["name"])
    assert llm_budget_alert_mail_task(str(tenant.organization.pk), 80, 8, 10) == 1
    message = mailoutbox[0].message()
    assert message["Subject"].startswith("Evil Bcc: victim@example.com: 80%")
    assert message["Bcc"] is None and "victim@example.com" not in mailoutbox[0].recipients()


def test_alert_email_for_a_deleted_organization_is_dropped(tenant, mailoutbox):
    from organizations.tasks import llm_budget_alert_mail_task

    organization_id = str(tenant.organization.pk)
    tenant.organization.delete()
    assert llm_budget_alert_mail_task(organization_id, 100, 10, 10) == 0
    assert mailoutbox == []


def test_a_failing_mail_server_retries_the_alert_later(tenant, settings):
    from celery.exceptions import Retry

    from organizations.tasks import llm_budget_alert_mail_task

    # A real SMTP attempt against a closed loopback port: connection refused.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", _closed_port(), 2
    with pytest.raises(Retry):
        llm_budget_alert_mail_task.apply(args=(str(tenant.organization.pk), 80, 8, 10), throw=True)


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
