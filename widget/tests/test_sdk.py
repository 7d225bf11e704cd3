"""The JS SDK (sdk/js) tested with Node's own test runner against a real running server."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from assistants.models import Assistant
from knowledge.services import qa_create
from organizations.services import api_key_create
from testkit.hostpage import HostSite
from widget.services import widget_create

pytestmark = pytest.mark.django_db(transaction=True)

SDK = Path(settings.BASE_DIR) / "sdk" / "js"


def test_js_sdk_against_a_live_server(live_server, tenant, other_tenant, settings):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    assistant = Assistant.objects.create(organization=tenant.organization, name="SDK helper")
    qa_create(
        organization=tenant.organization,
        question="What are your business hours?",
        answer="We are open Monday to Friday, 9am to 5pm EST.",
        assistant=assistant,
    )
    widget = widget_create(organization=tenant.organization, assistant_id=assistant.id, title="SDK widget")
    other_assistant = Assistant.objects.create(organization=other_tenant.organization, name="Other")
    other_widget = widget_create(organization=other_tenant.organization, assistant_id=other_assistant.id)
    _bearer_key, bearer_secret = api_key_create(organization=tenant.organization, name="server")
    env = {
        **os.environ,
        "SUPPORTAI_BASE_URL": live_server.url,
        "SUPPORTAI_API_KEY": bearer_secret,
        "SUPPORTAI_CLIENT_ID": tenant.client_id,
        "SUPPORTAI_CLIENT_SECRET": tenant.client_secret,
        "SUPPORTAI_WIDGET_ID": str(widget.id),
        "SUPPORTAI_ASSISTANT_ID": str(assistant.id),
        "SUPPORTAI_OTHER_WIDGET_ID": str(other_widget.id),
    }
    site = HostSite("")  # a web page for scrapeUrl, allowed although it is on loopback
    settings.SCRAPE_ALLOWLIST = [site.url.removeprefix("http://")]
    env["SUPPORTAI_SITE_URL"] = site.url
    with site:
        result = subprocess.run(
            [node, "--test", "--test-reporter=spec", str(SDK / "test" / "sdk.test.js")],
            cwd=SDK,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "# fail 0" in report or "fail 0" in report, report
    assert "pass 11" in report and "skipped 0" in report, report
