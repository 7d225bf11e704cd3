"""The front door (issue 13, items 4–7), attacked on a real gunicorn over loopback.

Mail is written by Django's file backend into a directory the test reads, so what a victim
would receive is checked as sent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from supportai.testing import tenant_create
from tests.conftest import assert_error_shape
from widget.services import widget_create

pytestmark = [pytest.mark.django_db(transaction=True)]

SITE_URL = "http://support.local.test:8400"
SHOP = "https://shop.example.com"


def _mails(directory: Path) -> list[str]:
    return [path.read_text() for path in sorted(directory.glob("*.log"))] if directory.exists() else []


def _csrf(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=30)
    assert page.status_code == 200, (page.status_code, page.text[:300])
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


@pytest.fixture
def mail_env(live_env, tmp_path):
    outbox = tmp_path / "outbox"
    return outbox, dict(
        live_env,
        LOG_LEVEL="WARNING",
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(outbox),
    )


def test_a_forged_host_header_is_refused_by_default(procs, mail_env):
    """Default ALLOWED_HOSTS are the local addresses: `Host: evil.example` never reaches a view."""
    tenant = tenant_create("Hosted")
    outbox, env = mail_env
    env.pop("ALLOWED_HOSTS", None)
    env.pop("SITE_URL", None)
    _web, url = procs.gunicorn(env=env, workers=1)
    session = requests.Session()
    token = _csrf(session, f"{url}/password-reset/")
    forged = session.post(
        f"{url}/password-reset/",
        data={"email": tenant.owner.email, "csrfmiddlewaretoken": token},
        headers={"Host": "evil.example", "Cookie": f"csrftoken={session.cookies['csrftoken']}"},
        timeout=30,
        allow_redirects=False,
    )
    assert forged.status_code == 400
    assert _mails(outbox) == []
    minted = requests.post(
        f"{url}/api/v1/auth/widget-token",
        json={"client_id": tenant.client_id},
        headers={"Host": "evil.example", "Origin": "http://evil.example"},
        timeout=30,
    )
    assert_error_shape(minted, 400)
    port = url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert requests.get(f"{url}/login/", headers={"Host": host}, timeout=30).status_code == 200


def test_links_and_own_origin_come_from_site_url_not_the_host_header(procs, mail_env):
    """Even with every Host allowed (an operator's ALLOWED_HOSTS=*), a reset requested with
    `Host: evil.example` links to SITE_URL, and Origin = Host = evil.example mints nothing."""
    tenant = tenant_create("Poisoned")
    widget = widget_create(organization=tenant.organization, allowed_domains=[SHOP], title="Shop")
    outbox, env = mail_env
    _web, url = procs.gunicorn(env=dict(env, ALLOWED_HOSTS="*", SITE_URL=SITE_URL), workers=1)
    session = requests.Session()
    token = _csrf(session, f"{url}/password-reset/")
    response = session.post(
        f"{url}/password-reset/",
        data={"email": tenant.owner.email, "csrfmiddlewaretoken": token},
        # requests picks cookies by the Host header: hand the CSRF cookie over explicitly.
        headers={"Host": "evil.example", "Cookie": f"csrftoken={session.cookies['csrftoken']}"},
        timeout=30,
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[:300]
    (mail,) = _mails(outbox)
    assert "evil.example" not in mail
    assert f"{SITE_URL}/password-reset/" in mail

    mint = f"{url}/api/v1/auth/widget-token"
    body = {"client_id": tenant.client_id, "config_id": str(widget.pk)}
    for headers in (
        {"Host": "evil.example", "Origin": "http://evil.example"},
        {"Host": "evil.example", "Origin": "https://evil.example"},
    ):
        assert_error_shape(requests.post(mint, json=body, headers=headers, timeout=30), 403)
    # Our own origin (the hosted frame, the dashboard preview) and the allowed shop still mint.
    for origin in (SITE_URL, SHOP):
        minted = requests.post(mint, json=body, headers={"Origin": origin}, timeout=30)
        assert minted.status_code == 200, minted.text
