"""The operator's whole journey in a real browser, from sign-up to a live inbox reply."""

from __future__ import annotations

import re
import time

import pytest
from django.core import mail
from playwright.sync_api import expect

from chat.models import Conversation
from organizations.models import ApiKey, Organization

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS_MESSAGE = '<img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> hi'


def test_sign_up_to_live_inbox_reply(browser_context, screenshot):
    dialogs: list[str] = []
    operator = browser_context.new_page()
    operator.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    # 1. Sign up: a user, an organization and an owner membership.
    operator.goto("/signup/")
    operator.fill("#id_name", "Grace Hopper")
    operator.fill("#id_email", "grace@acme.example")
    operator.fill("#id_password", "cobol-compiler-1959")
    operator.fill("#id_organization_name", "Acme Robotics")
    screenshot(operator, "signup")
    operator.click("button:has-text('Create account')")
    # 1b. Confirm the address through the emailed link (nothing is usable before that).
    expect(operator.locator("h1")).to_have_text("Check your inbox")
    (message,) = mail.outbox
    link = re.search(r"https?://\S+/signup/confirm/\S+/", message.body).group(0)
    operator.goto(link)
    operator.click("button:has-text('Confirm and sign in')")
    expect(operator.locator("h1")).to_have_text("Overview")
    expect(operator.get_by_text("Get started")).to_be_visible()
    screenshot(operator, "overview-getting-started")
    organization = Organization.objects.get(name="Acme Robotics")

    # 2. Generate an API key: the secret is shown once, with a copy button.
    operator.click("nav >> text=Settings")
    operator.click(".tabs >> text=API Keys")
    operator.fill("#id_name", "Production backend")
    operator.click("button:has-text('Generate New API Key')")
    secret_box = operator.get_by_test_id("new-secret")
    expect(secret_box).to_be_visible()
    secret = secret_box.input_value()
    assert secret.startswith("sk_")
    expect(operator.get_by_text("This is the only time it is shown")).to_be_visible()
    operator.click("button:has-text('Copy secret')")
    expect(operator.locator("button:has-text('Copied')")).to_be_visible()
    screenshot(operator, "api-key-created")
    key = ApiKey.objects.for_organization(organization).get()
    assert key.secret_hash != secret
    operator.goto("/settings/api-keys/")
    assert secret not in operator.content()
    expect(operator.get_by_text(key.client_id)).to_be_visible()
    screenshot(operator, "api-keys")

    # 3. Create an assistant (every persona field is on the form).
    operator.click("nav >> text=Assistants")
    expect(operator.get_by_text("No assistants yet")).to_be_visible()
    operator.click("text=Create an assistant")
    operator.fill("#id_name", "Robo Helper")
    operator.fill("#id_description", "Answers questions about Acme robots.")
    operator.fill("#id_tone", "friendly")
    operator.fill("#id_default_tasks", "answer_questions\nprovide_support")
    operator.fill("#id_instructions", "Keep answers short.")
    screenshot(operator, "assistant-form")
    operator.click("button:has-text('Create assistant')")
    expect(operator.locator("h1")).to_have_text("Playground")

    # 4. Add a Q&A pair and check what retrieval finds.
    operator.click("nav >> text=Knowledge")
    qa = operator.locator("#add-qa")  # by their labels: each label names its own field
    qa.get_by_label("Question").fill("What are your opening hours?")
    qa.get_by_label("Answer").fill("Our support team is available Monday to Friday, 9am to 5pm CET.")
    qa.get_by_label("Tags").fill("hours, support")
    operator.click("button:has-text('Add Q&A pair')")
    expect(operator.locator("tr[data-status='ready']")).to_have_count(1)
    operator.fill("#id_retrieval_query", "when can I reach you?")
    operator.click("button:has-text('Search knowledge')")
    expect(operator.get_by_test_id("retrieval-results")).to_contain_text("9am to 5pm")
    screenshot(operator, "knowledge")

    # The playground answers from it, with the source under the answer.
    operator.click("nav >> text=Assistants")
    operator.click("text=Try it")
    operator.fill("#id_content", "When are you open?")
    operator.press("#id_content", "Enter")
    expect(operator.get_by_test_id("message-assistant")).to_contain_text("9am to 5pm")
    expect(operator.get_by_test_id("sources")).to_contain_text("What are your opening hours?")
    screenshot(operator, "assistant-playground")

    # 5. Configure the widget.
    operator.click("nav >> text=Widget")
    operator.fill("#id_title", "Acme Support")
    operator.click("button:has-text('Create widget')")
    expect(operator.get_by_test_id("embed-snippet")).to_contain_text("data-client-id")
    operator.fill("#id_greeting", "Hi! Ask me anything about Acme robots.")
    operator.fill("#id_suggested_questions", "What are your opening hours?")
    operator.eval_on_selector("#id_primary_color", "el => { el.value = '#0f766e'; }")
    operator.click("button:has-text('Save and refresh preview')")
    expect(operator.get_by_text("Widget saved")).to_be_visible()
    snippet = operator.get_by_test_id("embed-snippet").inner_text()
    assert f'data-client-id="{key.client_id}"' in snippet and "/widget.js" in snippet

    # 6. Chat as a visitor in the live preview (the real widget.js, in its shadow DOM).
    preview = operator.frame_locator("[data-testid=widget-preview]")
    preview.locator("button.launcher").click()
    expect(preview.locator(".panel")).to_be_visible()
    preview.locator(".panel textarea").fill("What are your opening hours?")
    preview.locator("button[aria-label='Send message']").click()
    expect(preview.locator(".msg.assistant").last).to_contain_text("9am to 5pm", timeout=20_000)
    expect(preview.locator(".msg.assistant .sources").last).to_contain_text("opening hours")
    # The visitor rates the answer; the rating shows in the inbox transcript.
    preview.locator(".msg.assistant").last.locator("button[aria-label='Helpful']").click()
    expect(preview.get_by_text("Thanks for the feedback")).to_be_visible()
    preview.locator(".panel textarea").fill(XSS_MESSAGE)
    preview.locator("button[aria-label='Send message']").click()
    expect(preview.locator(".msg.user").last).to_contain_text("<img src=x")
    expect(preview.locator(".msg.assistant")).to_have_count(3, timeout=20_000)  # greeting + 2 answers

    # 7. The conversation is in the inbox; take it over and reply.
    inbox = browser_context.new_page()
    inbox.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    inbox.goto("/inbox/?kind=session")
    widget_session = (
        Conversation.objects.for_organization(organization).exclude(metadata__source="playground").get()
    )
    inbox.click(f"a[href^='/inbox/{widget_session.pk}/']")
    transcript = inbox.get_by_test_id("transcript")
    expect(transcript).to_contain_text("What are your opening hours?")
    expect(transcript.get_by_test_id("sources").first).to_contain_text("What are your opening hours?")
    expect(transcript.locator(".badge", has_text="Helpful")).to_have_count(1)
    # The visitor's markup is shown as text, never run.
    expect(transcript).to_contain_text('<img src=x onerror="window.__pwned=1">')
    assert inbox.evaluate("window.__pwned") is None
    expect(inbox.get_by_test_id("visitor-metadata")).to_contain_text("widget")
    inbox.click("button:has-text('Take over')")
    expect(inbox.get_by_test_id("handoff-status")).to_contain_text("Operator")
    inbox.fill("#reply-content", "Hi, this is Grace from Acme. How can I help?")
    replied = time.monotonic()
    inbox.click("button:has-text('Send reply')")
    expect(transcript.get_by_test_id("message-operator")).to_contain_text("Grace from Acme")
    screenshot(inbox, "inbox")

    # 8. The visitor's open widget shows the reply (the widget polls every 1.5 s while open).
    operator.bring_to_front()
    expect(preview.locator(".msg.operator")).to_contain_text("Grace from Acme", timeout=10_000)
    print(f"operator reply visible in the widget {time.monotonic() - replied:.2f}s after Send")
    screenshot(operator, "widget-configurator")
    assert operator.evaluate("window.__pwned") is None and not dialogs

    # While taken over, the bot stays quiet: the visitor's next message gets no bot answer.
    preview.locator(".panel textarea").fill("Thanks! One more thing.")
    preview.locator("button[aria-label='Send message']").click()
    inbox.bring_to_front()
    expect(transcript).to_contain_text("Thanks! One more thing.", timeout=10_000)
    assert transcript.get_by_test_id("message-assistant").count() == 2
    inbox.click("button:has-text('Resolve')")
    expect(inbox.get_by_test_id("handoff-status")).to_contain_text("Resolved")

    # 9. The overview charts the day's activity and lists the unanswered question.
    inbox.click("nav >> text=Overview")
    expect(inbox.get_by_test_id("kpi-conversations")).to_have_text(re.compile(r"[1-9]"))
    expect(inbox.locator("svg.chart rect").first).to_be_visible()
    expect(inbox.get_by_test_id("top-unanswered")).to_contain_text("window.__pwned")
    assert inbox.evaluate("window.__pwned") is None
    screenshot(inbox, "overview")
