"""The embeddable widget as a visitor meets it: widget.js size, and in headless Chromium the
time from clicking "send" to the first streamed token painted (and to the finished answer),
with the offline answerer, against gunicorn exactly as `make run` starts it. The host page
is served from another loopback origin, as a customer's site would be.
"""

from __future__ import annotations

import gzip
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/<name>.py` as well as `-m`

from bench import common  # noqa: E402
from testkit import processes  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
QUESTIONS = [
    "What are your business hours?",
    "How do I return an item?",
    "When are you open on weekdays?",
    "Can I send something back?",
    "Do you ship abroad?",
]
ROUNDS = 4

# Clicks "send" and resolves with the milliseconds to the first painted token and to the
# stored answer (its bubble gets the message id), measured in the page itself.
ASK = """(question) => new Promise((resolve) => {
  const root = document.querySelector('[data-supportai-instance]').shadowRoot;
  const before = root.querySelectorAll('.msg.assistant').length;
  root.querySelector('textarea').value = question;
  let first = null;
  const started = performance.now();
  const observer = new MutationObserver(() => {
    const bubbles = root.querySelectorAll('.msg.assistant');
    if (bubbles.length <= before) return;
    const bubble = bubbles[bubbles.length - 1];
    if (first === null && !bubble.querySelector('.typing') && bubble.textContent.trim()) {
      first = performance.now() - started;
    }
    if (bubble.hasAttribute('data-id')) {
      observer.disconnect();
      resolve({ first_token_ms: first, answer_ms: performance.now() - started });
    }
  });
  observer.observe(root, { subtree: true, childList: true, characterData: true, attributes: true });
  root.querySelector('button[aria-label="Send message"]').click();
})"""


def script_size() -> dict:
    body = (ROOT / "static" / "widget" / "widget.js").read_bytes()
    return {
        "raw_bytes": len(body),
        "gzip_bytes": len(gzip.compress(body, compresslevel=9)),
        "budget_gzip_bytes": 24576,
    }


def _knowledge_and_widget(env: dict, tenant: dict, host_origin: str) -> dict:
    widget = processes.manage_json(
        "create_widget", "--org", tenant["slug"], "--allowed-domain", host_origin, "--json", env=env
    )
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    from supportai.startup import process_start

    process_start()  # the embedded Postgres, as every process starts
    django.setup()
    from assistants.models import Assistant
    from knowledge.services import qa_create
    from organizations.models import Organization

    organization = Organization.objects.get(slug=tenant["slug"])
    assistant = Assistant.objects.for_organization(organization).get(pk=widget["assistant_id"])
    for question, answer in (
        ("What are your business hours?", "We are open Monday to Friday, 9 AM to 6 PM EST."),
        (
            "How do I return an item?",
            "Returns are free within 30 days: open My orders and choose Return item.",
        ),
        ("Do you ship internationally?", "Yes, we ship to 40 countries; delivery takes 5-10 business days."),
    ):
        qa_create(organization=organization, question=question, answer=answer, assistant=assistant)
    return widget


def _warm_workers(base_url: str, secret: str, widget_id: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import requests

    def ask(index: int) -> int:
        return requests.post(
            f"{base_url}/api/widget/chat",
            json={
                "message": "What are your business hours?",
                "widgetId": widget_id,
                "sessionId": f"warm-{index}",
            },
            headers={"Authorization": f"Bearer {secret}"},
            timeout=120,
        ).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(ask, range(32)))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> dict:
    from playwright.sync_api import sync_playwright

    from testkit.hostpage import HostSite

    results: dict = {"script": script_size()}
    env = common.bench_env()
    common.database_ready(env)
    tenant = processes.tenant_provision(env=env, name="Bench widget", rate_limit=common.UNLIMITED)
    server, base_url = processes.gunicorn_start(env=env, log_path=common.log_path("widget"))
    try:
        with HostSite("") as site:
            widget = _knowledge_and_widget(env, tenant, site.url)
            site.snippet = (
                f'<script src="{base_url}/widget.js" data-client-id="{widget["client_id"]}" '
                f'data-assistant-id="{widget["assistant_id"]}" data-config-id="{widget["id"]}" '
                'data-instance-id="bench"></script>'
            )
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                boots, first_turn, later_turns = [], [], []
                cold = None
                for round_index in range(ROUNDS + 1):
                    context = browser.new_context(viewport={"width": 1280, "height": 800})
                    page = context.new_page()
                    started = time.perf_counter()
                    page.goto(site.url)
                    page.locator("[data-supportai-instance] .launcher").wait_for(timeout=30000)
                    boots.append((time.perf_counter() - started) * 1000)
                    page.locator("[data-supportai-instance] .launcher").click()
                    for index, question in enumerate(QUESTIONS):
                        timing = page.evaluate(ASK, question)
                        if round_index == 0:
                            # The very first answer of a fresh server is reported on its own
                            # (models may still be loading); then warm every worker.
                            cold = cold or timing
                            continue
                        (first_turn if index == 0 else later_turns).append(timing)
                    context.close()
                    if round_index == 0:
                        _warm_workers(base_url, tenant["keys"][0]["client_secret"], widget["id"])
                browser.close()
    finally:
        processes.process_stop(server)

    def summary(turns: list[dict]) -> dict:
        first = [turn["first_token_ms"] for turn in turns if turn["first_token_ms"] is not None]
        answer = [turn["answer_ms"] for turn in turns]
        return {
            "n": len(turns),
            "first_token_ms_median": round(statistics.median(first), 1),
            "first_token_ms_p95": round(_percentile(first, 0.95), 1),
            "answer_ms_median": round(statistics.median(answer), 1),
        }

    results["page_load_to_launcher_ms_median"] = round(statistics.median(boots[1:]), 1)
    results["cold_server_first_token_ms"] = round(cold["first_token_ms"] or cold["answer_ms"], 1)
    # The first question also creates the session (one more round trip).
    results["first_question"] = summary(first_turn)
    results["later_questions"] = summary(later_turns)
    results["answerer"] = "offline"
    print(json.dumps(results, indent=2))
    return results


def report(results: dict) -> str:
    script = results["script"]
    lines = [
        f"widget.js: {script['raw_bytes']:,} bytes raw, {script['gzip_bytes']:,} bytes gzipped "
        f"(budget {script['budget_gzip_bytes']:,}).",
        f"Page load to launcher shown: {results['page_load_to_launcher_ms_median']} ms (median).",
        f"A freshly started server's very first answer: first token after "
        f"{results['cold_server_first_token_ms']} ms; warm figures below.",
        "",
        common.table(
            [
                {"turn": "first question (creates the session)", **results["first_question"]},
                {"turn": "later questions", **results["later_questions"]},
            ],
            ["turn", "n", "first_token_ms_median", "first_token_ms_p95", "answer_ms_median"],
        ),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    from bench import results

    sys.exit(results.standalone(sys.modules[__name__]))
