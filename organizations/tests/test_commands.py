import json
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from organizations.models import ApiKey, Organization

pytestmark = pytest.mark.django_db


def run(*args) -> dict:
    out = StringIO()
    call_command(*args, stdout=out)
    return json.loads(out.getvalue())


def test_create_organization_and_key_print_json(client):
    org = run(
        "create_organization",
        "--name",
        "Initech",
        "--owner-email",
        "boss@initech.example",
        "--owner-password",
        "s3cret-pass-word",
        "--rate-limit",
        "50",
        "--json",
    )
    assert set(org) == {"id", "slug"} and org["slug"] == "initech"
    assert Organization.objects.get(slug="initech").rate_limit_per_hour == 50
    key = run("create_api_key", "--org", "initech", "--name", "server", "--json")
    assert key["client_id"].startswith("ci_") and key["client_secret"].startswith("sk_")
    stored = ApiKey.objects.unscoped().get(client_id=key["client_id"])
    assert stored.secret_hash != key["client_secret"]
    response = client.get(
        "/api/v1/organization", HTTP_X_API_KEY=key["client_id"], HTTP_X_API_SECRET=key["client_secret"]
    )
    assert response.json()["data"]["rate_limit_per_hour"] == 50


def test_create_api_key_for_unknown_org_fails_cleanly():
    with pytest.raises(CommandError):
        call_command("create_api_key", "--org", "nope", "--name", "x", "--json")


def test_duplicate_slug_fails_cleanly():
    run(
        "create_organization",
        "--name",
        "Dup",
        "--owner-email",
        "a@dup.example",
        "--owner-password",
        "pw-long-enough",
        "--json",
    )
    with pytest.raises(CommandError):
        call_command(
            "create_organization",
            "--name",
            "Dup",
            "--slug",
            "dup",
            "--owner-email",
            "b@dup.example",
            "--owner-password",
            "pw-long-enough",
            "--json",
        )


def test_production_settings_refuse_to_start_without_secrets(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "SUPPORTAI_ENV": "production", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    from django.conf import settings

    db = settings.DATABASES["default"]
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SUPPORTAI_ENV": "production",
        "SECRET_KEY": "k" * 20 + "-production-grade-secret-value-0123456789abcdef",
        "ALLOWED_HOSTS": "support.example.com",
        "DATABASE_URL": f"postgres://{db['USER']}@/{db['NAME']}?host={db['HOST']}",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
