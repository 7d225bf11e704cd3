"""docs/integrations.md's signature snippets (Python and Node), taken from the markdown as
published, verify a real delivery received on loopback, and refuse a tampered body, a wrong
secret and a replayed (old) timestamp."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from organizations.services import event_emit
from webhooks import services
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db(transaction=True)

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


def _snippet(language: str) -> str:
    section = DOC.read_text().split("### Verifying the signature", 1)[1]
    match = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert match, f"no {language} snippet in docs/integrations.md"
    return match.group(1)


@pytest.fixture
def delivered(tenant, receiver):
    """(raw body, signature header, secret) of one real delivery."""
    endpoint, secret = services.endpoint_create(
        organization=tenant.organization, url=receiver.url("/hooks"), events=["handoff.requested"]
    )
    event_emit(organization=tenant.organization, type="handoff.requested", data={"conversation_id": "c1"})
    delivery = Delivery.objects.for_organization(tenant.organization).get()
    assert services.delivery_attempt(delivery_id=delivery.pk) == "delivered"
    [request] = receiver.received
    return request.body, request.headers["X-SupportAI-Signature"], secret


def _resigned(body: bytes, secret: str, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def test_the_python_snippet_verifies_a_real_delivery(delivered):
    body, header, secret = delivered
    namespace: dict = {}
    exec(compile(_snippet("python"), str(DOC), "exec"), namespace)  # noqa: S102 (our own docs)
    verify = namespace["verify_webhook"]
    event = verify(body, header, secret)
    assert event["type"] == "handoff.requested" and event["data"] == {"conversation_id": "c1"}
    with pytest.raises(ValueError, match="mismatch"):
        verify(body.replace(b"c1", b"c2"), header, secret)
    with pytest.raises(ValueError, match="mismatch"):
        verify(body, header, "whsec_wrong")
    with pytest.raises(ValueError, match="tolerance"):
        verify(body, _resigned(body, secret, int(time.time()) - 600), secret)
    with pytest.raises(ValueError, match="timestamp"):
        verify(body, "v1=abc", secret)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_node_snippet_verifies_a_real_delivery(delivered, tmp_path):
    body, header, secret = delivered
    script = tmp_path / "verify.js"
    script.write_text(
        _snippet("javascript")
        + """
const input = JSON.parse(require("fs").readFileSync(process.argv[2], "utf8"));
const results = input.cases.map(([bodyBase64, header, secret]) => {
  try {
    return { ok: verifyWebhook(Buffer.from(bodyBase64, "base64"), header, secret) };
  } catch (error) {
    return { error: error.message };
  }
});
process.stdout.write(JSON.stringify(results));
"""
    )
    encoded = base64.b64encode(body).decode()
    cases = [
        [encoded, header, secret],
        [base64.b64encode(body.replace(b"c1", b"c2")).decode(), header, secret],
        [encoded, header, "whsec_wrong"],
        [encoded, _resigned(body, secret, int(time.time()) - 600), secret],
    ]
    (tmp_path / "input.json").write_text(json.dumps({"cases": cases}))
    output = subprocess.run(
        ["node", str(script), str(tmp_path / "input.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    first, tampered, wrong_secret, replayed = json.loads(output.stdout)
    assert first["ok"]["type"] == "handoff.requested" and first["ok"]["data"] == {"conversation_id": "c1"}
    assert "mismatch" in tampered["error"] and "mismatch" in wrong_secret["error"]
    assert "tolerance" in replayed["error"]
