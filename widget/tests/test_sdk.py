"""The JS SDK (sdk/js) tested with Node's own test runner against a real running server, and the
API references' own JavaScript and curl examples (seed_examples/) run as written against one."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from assistants.models import Assistant
from knowledge.services import qa_create
from organizations.identity import identity_secret_rotate
from organizations.services import api_key_create
from testkit.documents import pdf_make
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
        "SUPPORTAI_IDENTITY_SECRET": identity_secret_rotate(organization=tenant.organization)[1],
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
    assert "pass 13" in report and "skipped 0" in report, report


EXAMPLES = Path(__file__).resolve().parent / "seed_examples"

# Runs before each example: records every HTTP exchange (the SDK's calls too: it reads
# globalThis.fetch when a client is made), and gives the upload example the `pdfFile` it expects.
PRELUDE = """
import { readFileSync as __read } from "node:fs";
const __exchanges = [];
const __fetch = globalThis.fetch;
globalThis.fetch = (url, init = {}) => {
  const headers = init.headers || {};
  const key = Boolean(headers["X-API-Key"]) || String(headers.Authorization || "").startsWith("Bearer sk_");
  const record = { method: init.method || "GET", url: String(url), form: init.body instanceof FormData, key };
  const answer = __fetch(url, init).then(async (response) => {
    record.status = response.status;
    record.content_type = response.headers.get("content-type");
    record.rate_limit = response.headers.get("x-ratelimit-limit");
    record.body = await response.clone().json().catch(() => null);
    return response;
  });
  __exchanges.push({ record, answer });
  return answer;
};
const pdfFile = new (globalThis.File || Blob)([__read(process.env.SEED_PDF)], "manual.pdf", { type: "application/pdf" });
"""
EPILOGUE = """
await Promise.allSettled(__exchanges.map((exchange) => exchange.answer));
console.log("EXCHANGES " + JSON.stringify(__exchanges.map((exchange) => exchange.record)));
"""


def _example(names: list[str], substitutions: dict[str, str]) -> str:
    code = "\n".join((EXAMPLES / name).read_text() for name in names)
    for placeholder, value in substitutions.items():
        code = code.replace(placeholder, value)
    left = re.findall(
        r"YOUR_[A-Z_]+|companin\.tech|example\.(?:com|tech)|assistant-uuid|ASSISTANT_UUID", code
    )
    assert not left, left  # every placeholder was given a value
    imports = [line for line in code.splitlines() if line.startswith("import ")]
    body = "\n".join(line for line in code.splitlines() if not line.startswith("import "))
    return "\n".join([*imports, PRELUDE, body, EPILOGUE])


def test_the_references_js_examples_run_as_written(live_server, tenant, tmp_path, settings):
    """Seed 000's SDK example (`import … from 'supportgenie-sdk'`, the package installed by npm
    from sdk/js under its own name) and seed 003's fetch examples, unchanged but for the base
    URL, credentials and ids, against a live server: each call answers as the references say."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed")
    assistant = Assistant.objects.create(organization=tenant.organization, name="Reference helper")
    qa_create(
        organization=tenant.organization,
        question="What are your business hours?",
        answer="We are open Monday to Friday, 9am to 5pm EST.",
        assistant=assistant,
    )
    widget = widget_create(
        organization=tenant.organization, assistant_id=assistant.id, title="Reference widget"
    )
    install = subprocess.run(
        [npm, "install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", str(SDK)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    (tmp_path / "manual.pdf").write_bytes(pdf_make(["To reset the device, hold the power button."]))
    site = HostSite("")  # the two public pages the examples name (tests have no network)
    site.files["/about-us"] = (
        b"<title>About Acme</title><p>Acme makes AI tools since 2001.</p>",
        "text/html",
    )
    site.files["/blog/new-features"] = (b"<title>New</title><p>Dark mode has arrived.</p>", "text/html")
    settings.SCRAPE_ALLOWLIST = [site.url.removeprefix("http://")]
    env = {**os.environ, "SUPPORTAI_BASE_URL": live_server.url, "SEED_PDF": str(tmp_path / "manual.pdf")}
    v1 = {
        "https://app.companin.tech": live_server.url,
        "https://example.tech": site.url,
        "YOUR_CLIENT_ID": tenant.client_id,
        "YOUR_CLIENT_SECRET": tenant.client_secret,
        "assistant-uuid": str(assistant.id),
        "ASSISTANT_UUID": str(assistant.id),
    }
    programs = {
        "000": (
            ["000-sdk.js"],
            {
                "YOUR_API_KEY": tenant.client_secret,
                "YOUR_WIDGET_ID": str(widget.id),
                "https://example.com": site.url,
            },
        ),
        "003-widget": (["003-widget-session.js", "003-minimal-session.js"], v1),
        "003-personalized": (["003-personalized.js"], v1),
        "003-knowledge": (["003-knowledge.js"], v1),
    }
    exchanges = {}
    with site:
        for name, (files, substitutions) in programs.items():
            program = tmp_path / f"{name}.mjs"
            program.write_text(_example(files, substitutions))
            run = subprocess.run(
                [node, str(program)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
            )
            assert run.returncode == 0, run.stdout + run.stderr
            line = next(line for line in run.stdout.splitlines() if line.startswith("EXCHANGES "))
            exchanges[name] = json.loads(line.removeprefix("EXCHANGES "))
    for name, calls in exchanges.items():
        for call in calls:
            assert call["content_type"].startswith("application/json"), (name, call)
            # SPEC: 1000 per hour per organization for its keys. The public token mint and the
            # visitors' tokens have budgets of their own (settings WIDGET_*), shown instead.
            assert call["rate_limit"] == "1000" if call["key"] else call["rate_limit"], (name, call)
    # Seed 000: chat, scrape, config, in the reference's camelCase shapes.
    chat, scrape, config = exchanges["000"]
    assert chat["url"] == f"{live_server.url}/api/widget/chat" and chat["status"] == 200
    assert set(chat["body"]) == {"id", "message", "timestamp"} and chat["body"]["id"].startswith("resp_")
    assert scrape["status"] == 200 and scrape["body"]["title"] == "About Acme"
    assert "AI tools" in scrape["body"]["content"] and scrape["body"]["scrapedAt"].endswith("Z")
    assert config["status"] == 200 and config["body"]["widgetId"] == str(widget.id)
    # Seed 003, widget flow: token at the top level, then the envelope with the visitor's session.
    token, session, message, minimal = exchanges["003-widget"]
    assert token["status"] == 200 and set(token["body"]) == {"token", "expires_in", "token_type"}
    assert session["status"] == 201 and session["body"]["status"] == "success"
    assert message["status"] == 201 and message["body"]["data"]["role"] == "assistant"
    assert minimal["url"].endswith("/api/v1/sessions") and minimal["status"] == 201
    context, conversation, answer = exchanges["003-personalized"]
    assert context["status"] == 201 and context["body"]["data"]["traits"]["name"] == "Alice"
    assert conversation["status"] == 201
    assert conversation["body"]["data"]["user_context_id"] == context["body"]["data"]["id"]
    assert answer["status"] == 201 and answer["body"]["data"]["role"] == "assistant"
    upload, faq, web = exchanges["003-knowledge"]
    assert upload["form"] and upload["status"] == 202 and upload["body"]["data"]["status"] == "pending"
    assert (
        upload["body"]["data"]["file_type"] == "pdf" and upload["body"]["data"]["title"] == "User Manual v2.0"
    )
    assert faq["status"] == 201 and faq["body"]["data"]["tags"] == ["password", "security"]
    assert web["status"] == 202 and web["body"]["data"]["url"] == f"{site.url}/blog/new-features"


def test_the_references_curl_examples_run_as_written(live_server, tenant, tmp_path, settings):
    """Every curl example of both references (seed_examples/curl.sh), run by curl with only the
    base URL, credentials and ids substituted: the documented statuses and JSON answers."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    settings.LLM_MODEL = ""
    settings.LLM_PROVIDER = ""
    assistant = Assistant.objects.create(organization=tenant.organization, name="Reference helper")
    widget = widget_create(
        organization=tenant.organization, assistant_id=assistant.id, title="Reference widget"
    )
    (tmp_path / "product_manual.pdf").write_bytes(pdf_make(["To reset the device, hold the power button."]))
    substitutions = {
        "https://supportgenie.online": live_server.url,
        "https://app.companin.tech": live_server.url,
        "YOUR_API_KEY": tenant.client_secret,
        "YOUR_WIDGET_ID": str(widget.id),
        "YOUR_CLIENT_ID": tenant.client_id,
        "YOUR_CLIENT_SECRET": tenant.client_secret,
        "550e8400-e29b-41d4-a716-446655440000": str(assistant.id),
    }
    env = {"PATH": os.environ["PATH"]}
    answers = []
    for command in (EXAMPLES / "curl.sh").read_text().strip().split("\n\n"):
        for placeholder, value in substitutions.items():
            command = command.replace(placeholder, value)
        run = subprocess.run(
            ["bash", "-c", command + " -s -o answer.json -w '%{http_code} %{content_type}'"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        status, content_type = run.stdout.split(" ", 1)
        assert content_type.startswith("application/json"), (command, run.stdout)
        body = json.loads((tmp_path / "answer.json").read_text())
        answers.append((int(status), body))
        data = body.get("data") if isinstance(body, dict) else None
        if "/api/v1/sessions/ " in command + " " and status == "201":
            env["SESSION_ID"] = data["id"]
        if "/api/v1/conversations/ " in command + " " and status == "201":
            env["CONVERSATION_ID"] = data["id"]
    statuses = [status for status, _body in answers]
    assert statuses == [200, 200, 201, 201, 201, 201, 201, 201, 202, 201, 200], answers
    chat, listed, created = answers[0][1], answers[1][1], answers[2][1]
    assert set(chat) == {"id", "message", "timestamp"}
    assert listed["status"] == "success" and listed["data"]["count"] == 1
    assert created["data"]["default_tasks"] == ["answer_questions", "provide_support"]
    session, message, conversation, reply, context, upload, qa, token = (body for _s, body in answers[3:])
    assert session["data"]["metadata"] == {"source": "website", "page": "/contact"}
    assert message["data"]["role"] == "assistant" and reply["data"]["role"] == "assistant"
    assert conversation["data"]["customer_id"] == "user-456"
    assert context["data"]["traits"]["preferences"] == {"language": "en", "notifications": True}
    assert upload["data"]["file_name"] == "product_manual.pdf" and upload["data"]["status"] == "pending"
    assert qa["data"]["tags"] == ["hours", "support"]
    assert set(token) == {"token", "expires_in", "token_type"} and token["expires_in"] == 3600
