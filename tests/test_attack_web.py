"""Attack rows 25 (start-up without secrets), 48 (CSRF and session cookies), 49 (framing and
CORS), against a real gunicorn running the production settings."""

from __future__ import annotations

import re
import subprocess
import time

import pytest
import requests
from django.contrib.auth import get_user_model

from testkit import processes
from testkit.fixtures import tenant_create

STRONG_KEY = "p" * 10 + "-production-grade-secret-value-0123456789abcdefGHIJ"


def _production_env(live_env: dict, **overrides) -> dict:
    env = dict(
        live_env,
        SUPPORTAI_ENV="production",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="True",
    )
    env.pop("JWT_SIGNING_KEY", None)
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


@pytest.mark.chaos
@pytest.mark.django_db(transaction=True)
def test_production_cookies_csrf_framing_and_cors(procs, live_env):
    tenant = tenant_create("Cookie Jar", rate_limit_per_hour=10_000)
    User = get_user_model()
    User.objects.create_user(
        "operator@example.com", "operator@example.com", "operator-pass-123", is_staff=True
    )
    _web, url = procs.gunicorn(env=_production_env(live_env))
    port = url.rsplit(":", 1)[1]
    https = {"X-Forwarded-Proto": "https"}  # as the TLS-terminating proxy sends it
    origin = f"https://127.0.0.1:{port}"

    # Plain HTTP is redirected to HTTPS (and health probes are exempt).
    plain = requests.get(f"{url}/login/", allow_redirects=False, timeout=10)
    assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")
    assert requests.get(f"{url}/healthz", timeout=10).status_code == 200

    page = requests.get(f"{url}/login/", headers=https, timeout=10)
    assert page.status_code == 200
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "max-age=31536000" in page.headers["Strict-Transport-Security"]
    assert page.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    csrf_cookie = page.headers["Set-Cookie"]
    assert "Secure" in csrf_cookie and "SameSite=Lax" in csrf_cookie
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    # The cookie is Secure, so a client on plain-HTTP loopback must send it by hand (the
    # proxy would speak HTTPS to the browser).
    cookie = {"Cookie": "csrftoken=" + re.search(r"csrftoken=([^;]+)", csrf_cookie).group(1)}

    form = {"username": "operator@example.com", "password": "operator-pass-123", "next": "/"}
    # A cross-site form post: no token, foreign Origin → 403, no session.
    forged = requests.post(
        f"{url}/login/",
        data=form,
        headers={**https, "Origin": "https://evil.example", "Referer": "https://evil.example/"},
        allow_redirects=False,
        timeout=10,
    )
    assert forged.status_code == 403 and "sessionid" not in forged.headers.get("Set-Cookie", "")
    # The right token but a foreign Origin → still 403 (Django's origin check).
    foreign = requests.post(
        f"{url}/login/",
        data={**form, "csrfmiddlewaretoken": token},
        headers={**https, **cookie, "Origin": "https://evil.example"},
        allow_redirects=False,
        timeout=10,
    )
    assert foreign.status_code == 403

    login = requests.post(
        f"{url}/login/",
        data={**form, "csrfmiddlewaretoken": token},
        headers={**https, **cookie, "Origin": origin, "Referer": f"{origin}/login/"},
        allow_redirects=False,
        timeout=10,
    )
    assert login.status_code == 302, login.text[:500]
    session_cookie = next(c for c in login.raw.headers.getlist("Set-Cookie") if c.startswith("sessionid="))
    assert "Secure" in session_cookie and "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie

    # CORS: the operator API never grants a foreign origin, with or without credentials.
    api_headers = {**https, "X-API-Key": tenant.client_id, "X-API-Secret": tenant.client_secret}
    cross = requests.get(
        f"{url}/api/v1/organization", headers={**api_headers, "Origin": "https://evil.example"}, timeout=10
    )
    assert cross.status_code == 200
    assert "Access-Control-Allow-Origin" not in cross.headers
    assert "Access-Control-Allow-Credentials" not in cross.headers
    preflight = requests.options(
        f"{url}/api/v1/organization",
        headers={
            **https,
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "DELETE",
            "Access-Control-Request-Headers": "x-api-key, x-api-secret",
        },
        timeout=10,
    )
    assert preflight.headers.get("Access-Control-Allow-Origin") in (None, "*")
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    log = procs.log("web").read_text()
    assert "Traceback" not in log and tenant.client_secret not in log


@pytest.mark.chaos
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "django-insecure-" + "x" * 50}, "SECRET_KEY is too weak"),
        ({"SECRET_KEY": "short-secret"}, "SECRET_KEY is too weak"),
        ({"JWT_SIGNING_KEY": "secret"}, "JWT_SIGNING_KEY is too weak"),
        ({"ALLOWED_HOSTS": None}, "ALLOWED_HOSTS must be set"),
        ({"DATABASE_URL": None}, "DATABASE_URL must be set"),
    ],
)
def test_production_refuses_to_start_without_real_secrets(tmp_path, overrides, message):
    """Row 25: the web server itself (gunicorn, as deployed) exits instead of serving."""
    env = _production_env(processes.base_env(DATABASE_URL="postgres://nobody@127.0.0.1:1/none"), **overrides)
    for name in [key for key, value in overrides.items() if value is None]:
        env.pop(name, None)
    port = processes.free_port()
    log = tmp_path / "web.log"
    with open(log, "wb") as output:
        web = subprocess.Popen(
            [*processes.gunicorn_command(port=port, workers=1), "--preload"],
            cwd=processes.ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while web.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert web.returncode not in (None, 0)
    finally:
        processes.process_stop(web)
    assert message in log.read_text()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


def test_development_ignores_an_empty_jwt_signing_key(tmp_path):
    """`JWT_SIGNING_KEY=` (blank line in .env) must not mean signing with an empty key."""
    env = processes.base_env(JWT_SIGNING_KEY="")
    result = subprocess.run(
        [
            processes.sys.executable,
            "-c",
            "import django, os; django.setup(); from django.conf import settings; "
            "print(len(settings.SIMPLE_JWT['SIGNING_KEY']))",
        ],
        cwd=processes.ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(result.stdout.strip().splitlines()[-1]) >= 50
