"""The widget in a real browser (Debian Chromium via Playwright), embedded in a page served
from another origin than the API, as a customer's site would."""

from __future__ import annotations

import os
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests
from django.conf import settings

from assistants.models import Assistant
from chat import services as chat_services
from chat.models import Conversation
from knowledge.services import qa_create
from testkit.hostpage import HostSite
from widget.models import Widget
from widget.selectors import widget_embed_snippet
from widget.services import widget_client_key_get_or_create, widget_create, widget_update
from widget.tokens import widget_token_decode

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
WIDGET = "[data-supportai-instance]"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make browser)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread; Django's ORM calls
    # made by the test itself are still plain synchronous calls.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def shop(tenant, live_server, settings):
    """An organization with a knowledge base, a widget locked to the shop's origin, and the shop."""
    settings.SITE_URL = live_server.url  # our own origin (the hosted frame) comes from SITE_URL
    organization = tenant.organization
    assistant = Assistant.objects.create(organization=organization, name="Acme helper")
    qa_create(
        organization=organization,
        question="What are your business hours?",
        answer="We are open **Monday to Friday, 9 AM to 6 PM EST**. Details on [our contact page](https://acme.example/contact).",
        tags=["hours"],
        assistant=assistant,
    )
    qa_create(
        organization=organization,
        question="How do I return an item?",
        answer="Returns are free within **30 days**:\n\n1. Open *My orders*\n2. Choose **Return item**\n3. Print the label",
        tags=["returns"],
        assistant=assistant,
    )
    # The shop runs a strict Content-Security-Policy: the widget needs no inline script,
    # no eval, no inline <style> and no request to anyone but its own server.
    api = live_server.url
    csp = (
        f"default-src 'none'; script-src {api}; connect-src {api}; style-src 'self'; img-src 'self'; "
        f"frame-src {api}; base-uri 'none'"
    )
    with HostSite("", csp=csp) as site:
        widget = widget_create(
            organization=organization,
            assistant_id=assistant.id,
            title="Acme support",
            greeting="Hi! Ask me anything about your order, returns or our opening hours.",
            primary_color="#0f766e",
            suggested_questions=["What are your business hours?", "How do I return an item?"],
            allowed_domains=[site.url],
            options={"instance": "shop"},
        )
        api_key = widget_client_key_get_or_create(organization=organization)
        site.snippet = widget_embed_snippet(
            widget=widget, base_url=live_server.url, client_id=api_key.client_id
        )
        site.widget = widget
        site.assistant = assistant
        yield site


def shadow_text(page) -> str:
    return page.evaluate(f"() => document.querySelector('{WIDGET}').shadowRoot.textContent")


def test_visitor_chats_with_the_knowledge_base_from_another_origin(browser, shop, tenant, live_server):
    assert not shop.url.startswith(live_server.url)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    external = []
    page.on(
        "request",
        lambda r: external.append(r.url) if not r.url.startswith((shop.url, live_server.url)) else None,
    )
    streams = []
    page.on(
        "response",
        lambda r: (
            streams.append(r.headers.get("content-type", ""))
            if r.url.endswith("/messages") and r.request.method == "POST"
            else None
        ),
    )
    page.goto(shop.url)

    widget = page.locator(WIDGET)
    launcher = widget.locator(".launcher")
    launcher.wait_for(timeout=15000)
    assert launcher.is_visible()  # the host's `button {display:none !important}` does not reach it
    assert launcher.get_attribute("aria-expanded") == "false"
    launcher.click()
    panel = widget.locator("[role=dialog]")
    assert panel.is_visible() and launcher.get_attribute("aria-expanded") == "true"
    assert "Ask me anything about your order" in panel.inner_text()
    # The focus lands in the message box; Esc closes and gives focus back to the launcher.
    assert (
        page.evaluate(f"() => document.querySelector('{WIDGET}').shadowRoot.activeElement.tagName")
        == "TEXTAREA"
    )
    page.keyboard.press("Escape")
    assert not panel.is_visible()
    assert (
        page.evaluate(f"() => document.querySelector('{WIDGET}').shadowRoot.activeElement.className")
        == "launcher"
    )
    page.keyboard.press("Enter")
    assert panel.is_visible()
    # Focus trap: tabbing from the last control goes back into the panel, never to the page.
    for _ in range(8):
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.hasAttribute('data-supportai-instance')")

    widget.locator("textarea").fill("When are you open during the week?")
    page.keyboard.press("Enter")
    answer = widget.locator(".msg.assistant[data-id]").first
    answer.wait_for(timeout=30000)
    assert "Monday to Friday, 9 AM to 6 PM EST" in answer.inner_text()
    assert answer.locator("strong").first.inner_text() == "Monday to Friday, 9 AM to 6 PM EST"
    assert answer.locator("a").first.get_attribute("href") == "https://acme.example/contact"
    assert answer.locator("a").first.get_attribute("rel") == "noopener noreferrer nofollow"
    assert "What are your business hours?" in answer.locator(".sources").inner_text()
    assert streams and streams[0].startswith("text/event-stream")

    # Thumbs up is stored on the message.
    answer.locator("button[aria-label=Helpful]").click()
    answer.locator("text=Thanks for the feedback").wait_for()
    conversation = Conversation.objects.for_organization(tenant.organization).get()
    assert conversation.messages.filter(role="assistant").get().feedback == 1

    page.reload()
    widget.locator(".msg.assistant[data-id]").first.wait_for(timeout=15000)
    assert panel.is_visible()  # it stays open across page loads
    assert "When are you open during the week?" in shadow_text(page)  # history is back
    widget.locator("textarea").fill("How can I return something?")
    widget.locator("button[aria-label='Send message']").click()
    widget.locator(".msg.assistant[data-id]").nth(1).wait_for(timeout=30000)
    steps = (
        widget.locator(".msg.assistant[data-id]")
        .nth(1)
        .locator(":scope > div:not(.sources):not(.meta) > ol > li")
    )
    assert steps.all_inner_texts() == ["Open My orders", "Choose Return item", "Print the label"]

    # The open panel holds one event stream and polls nothing: 6 idle seconds, no request.
    api_calls = []
    page.on("request", lambda r: api_calls.append(r.url) if "/api/" in r.url else None)
    page.wait_for_timeout(6000)
    assert api_calls == [], api_calls

    # An operator types, then replies: the open widget shows both at once, labelled.
    chat_services.conversation_typing_signal(conversation=conversation)
    widget.locator(".msg.operator .typing").wait_for(timeout=2000)
    chat_services.operator_reply_post(
        conversation=conversation, user=tenant.owner, content="Hi, I'm Dana from Acme. Anything else?"
    )
    widget.locator(".msg.operator[data-id]").wait_for(timeout=2000)
    assert "Dana from Acme" in widget.locator(".msg.operator").inner_text()
    assert "Support team" in widget.locator(".msg.operator").inner_text()
    assert widget.locator(".msg.operator .typing").count() == 0  # the reply replaced it
    assert "You are chatting with our team" in panel.inner_text()  # the status came too
    assert api_calls == [], api_calls  # all of it over the one stream

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "widget-desktop.png"))
    page.set_viewport_size({"width": 375, "height": 720})
    page.wait_for_timeout(200)
    box = panel.bounding_box()
    assert box["width"] <= 375 and box["x"] >= 0  # full width on a phone, nothing off-screen
    page.screenshot(path=str(SCREENSHOTS / "widget-phone.png"))

    assert external == []  # no request anywhere but our API and the host page
    context.close()


def test_html_and_javascript_in_answers_never_execute(browser, shop, tenant):
    qa_create(
        organization=tenant.organization,
        question="What is your warranty?",
        answer=(
            "Two years. <img src=x onerror=\"window.__xss='img'\"> <svg onload=\"window.__xss='svg'\"></svg> "
            "[x](javascript:window.__xss='link') [d](data:text/html,<script>alert(1)</script>) "
            f"![tracker]({shop.url}/track.png?d=secret) [ref][evil]\n\n[evil]: javascript:window.__xss='ref'"
        ),
        assistant=shop.assistant,
    )
    context = browser.new_context()
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(shop.url)
    widget = page.locator(WIDGET)
    widget.locator(".launcher").click()
    widget.locator("textarea").fill("What is your warranty?")
    page.keyboard.press("Enter")
    answer = widget.locator(".msg.assistant[data-id]").first
    answer.wait_for(timeout=30000)
    text = answer.inner_text()
    assert "Two years." in text and "<img src=x onerror=" in text  # shown as text, inert
    for link in answer.locator("a").all():
        assert re.match(r"^https?://", link.get_attribute("href"))
    assert answer.locator("img, svg[onload], script, iframe").count() == 0
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__xss") is None
    assert dialogs == []
    assert not any(path.startswith("/track.png") for path in shop.requests)  # images never load

    # An operator's reply goes through the same renderer: inert too.
    conversation = Conversation.objects.for_organization(tenant.organization).get()
    chat_services.operator_reply_post(
        conversation=conversation,
        user=tenant.owner,
        content="Agent here. <img src=x onerror=\"window.__xss='operator'\"> [y](javascript:window.__xss='op')",
    )
    reply = widget.locator(".msg.operator[data-id]").first
    reply.wait_for(timeout=30000)
    assert "<img src=x onerror=" in reply.inner_text()
    assert reply.locator("img, a[href^='javascript']").count() == 0

    # The renderer itself, over every link and image form (security plan rows 32, 33, 35).
    payloads = [
        '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
        '<a href="data:text/html,<script>alert(1)</script>">x</a>',
        "[a](JaVaScRiPt:alert(1)) [b]( javascript:alert(1)) [c](\x01javascript:alert(1))",
        "[d](//evil.example/steal) [e](vbscript:msgbox) [f](file:///etc/passwd)",
        "![x](https://evil.example/x.png?d=secret) ![y][img]\n\n[img]: https://evil.example/y.png",
        "[ref link][r] <https://ok.example/page> https://ok.example/bare\n\n[r]: javascript:alert(1)",
        "**bold <script>alert(1)</script>** `<b>code</b>`",
    ]
    rendered = page.evaluate(
        """(payloads) => payloads.map((text) => {
            const box = document.createElement('div');
            box.appendChild(window.SupportAI.renderMarkdown(text));
            return {
                html: box.innerHTML,
                text: box.textContent,
                hrefs: [...box.querySelectorAll('a')].map((a) => a.getAttribute('href')),
                dangerous: box.querySelectorAll('img, iframe, script, svg, object, embed, [onerror], [onload], [srcdoc]').length,
            };
        })""",
        payloads,
    )
    for result in rendered:
        assert result["dangerous"] == 0, result
        assert all(re.match(r"^https?://", href) for href in result["hrefs"]), result
    assert rendered[5]["hrefs"] == ["https://ok.example/page", "https://ok.example/bare"]
    assert "<script>alert(1)</script>" in rendered[6]["text"] and "<b>code</b>" in rendered[6]["text"]
    assert "evil.example" not in rendered[4]["html"]
    assert page.evaluate("() => window.__xss") is None
    context.close()


def test_a_site_that_is_not_allowed_gets_no_token_and_no_widget(browser, shop, tenant, live_server):
    with HostSite(shop.snippet) as intruder:
        context = browser.new_context()
        page = context.new_page()
        attempts, warnings = [], []
        page.on("request", lambda r: attempts.append(r) if "widget-token" in r.url else None)
        page.on(
            "console", lambda message: warnings.append(message.text) if message.type == "warning" else None
        )
        page.goto(intruder.url)
        page.wait_for_timeout(1500)
        assert attempts, "the widget asked for a token"
        # The site's owner is told what to check, once, on this page's console (a snippet
        # tried on a host not in the allowed domains showed only the browser's CORS error).
        origin = intruder.url.rstrip("/")
        assert [text for text in warnings if "SupportAI" in text] == [
            f"SupportAI widget: could not reach {live_server.url} from {origin}. If {origin} is not among "
            "the widget's allowed domains (dashboard: Widget, Where it may run), add it; otherwise check "
            f"that {live_server.url} is up. Retrying."
        ]
        # The API refused (403) and, the origin not being allowed, sent no CORS grant:
        # the page's script cannot even read the refusal.
        for attempt in attempts:
            response = attempt.response()  # waits for it; None when the browser failed it
            assert response is None or response.status == 403
        direct = requests.post(
            f"{live_server.url}/api/v1/auth/widget-token",
            json={"client_id": tenant.client_id, "config_id": str(shop.widget.id)},
            headers={"Origin": intruder.url},
            timeout=10,
        )
        assert direct.status_code == 403 and "Access-Control-Allow-Origin" not in direct.headers
        assert page.locator(WIDGET).count() == 0
        stored = page.evaluate("() => JSON.stringify(window.localStorage)")
        assert "eyJ" not in stored
        context.close()


def test_hosted_frame_is_framed_only_by_allowed_sites(browser, shop, live_server):
    frame = f'<iframe title="Support chat" src="{live_server.url}/widget/{shop.widget.id}/frame"></iframe>'
    shop.snippet = frame
    context = browser.new_context()
    page = context.new_page()
    page.goto(shop.url)
    inside = page.frame_locator("iframe").locator(WIDGET)
    inside.locator("textarea").wait_for(timeout=15000)  # opens by itself, fills the frame
    inside.locator("textarea").fill("When are you open?")
    inside.locator("textarea").press("Enter")
    inside.locator(".msg.assistant[data-id] .sources").wait_for(timeout=30000)
    assert "Monday to Friday" in inside.locator(".msg.assistant[data-id]").inner_text()

    with HostSite(frame) as intruder:
        page.goto(intruder.url)
        page.wait_for_timeout(1500)
        assert page.frame_locator("iframe").locator(WIDGET).count() == 0  # frame-ancestors refused it
    context.close()


def test_offline_send_goes_out_once_when_back_online(browser, shop, tenant):
    context = browser.new_context()
    page = context.new_page()
    page.goto(shop.url)
    widget = page.locator(WIDGET)
    widget.locator(".launcher").click()
    context.set_offline(True)
    widget.locator("text=You are offline").first.wait_for(timeout=5000)
    widget.locator("textarea").fill("What are your business hours?")
    page.keyboard.press("Enter")
    widget.locator("[role=alert]").wait_for(timeout=10000)
    assert "sent when you are back online" in widget.locator("[role=alert]").inner_text()
    context.set_offline(False)
    widget.locator(".msg.assistant[data-id]").first.wait_for(timeout=30000)
    assert widget.locator("[role=alert]").count() == 0
    assert widget.locator(".msg.user").count() == 1
    conversation = Conversation.objects.for_organization(tenant.organization).get()
    assert conversation.messages.filter(role="user").count() == 1
    context.close()


def test_live_updates_resume_after_a_network_drop_and_a_closed_panel_costs_nothing(browser, shop, tenant):
    context = browser.new_context()
    page = context.new_page()
    api_calls = []
    page.on("request", lambda r: api_calls.append(r.url) if "/api/" in r.url else None)
    page.goto(shop.url)
    widget = page.locator(WIDGET)
    widget.locator(".launcher").click()
    widget.locator("textarea").fill("What are your business hours?")
    page.keyboard.press("Enter")
    widget.locator(".msg.assistant[data-id]").first.wait_for(timeout=30000)
    conversation = Conversation.objects.for_organization(tenant.organization).get()

    # The network drops; meanwhile the operator answers twice. Back online, the widget
    # reconnects after the last message it had and shows both, once each, in order.
    context.set_offline(True)
    widget.locator("text=You are offline").first.wait_for(timeout=5000)
    for text in ("First, while you were away.", "Second, while you were away."):
        chat_services.operator_reply_post(conversation=conversation, user=tenant.owner, content=text)
    page.wait_for_timeout(500)
    assert widget.locator(".msg.operator").count() == 0
    context.set_offline(False)
    widget.locator(".msg.operator[data-id]").nth(1).wait_for(timeout=10000)
    texts = [" ".join(text.split()) for text in widget.locator(".msg.operator").all_inner_texts()]
    assert texts == ["Support team First, while you were away.", "Support team Second, while you were away."]
    events = [url for url in api_calls if url.split("?")[0].endswith("/events")]
    assert any("after=" in url for url in events[1:]), events  # resumed, not replayed

    # A closed panel holds no connection and asks for nothing; opening it catches up.
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    before = len(api_calls)
    chat_services.operator_reply_post(conversation=conversation, user=tenant.owner, content="Third.")
    page.wait_for_timeout(5000)
    assert api_calls[before:] == []
    widget.locator(".launcher").click()
    widget.locator(".msg.operator[data-id]").nth(2).wait_for(timeout=5000)
    assert widget.locator(".msg.operator").count() == 3
    context.close()


def test_two_widgets_on_one_page_keep_their_own_conversations(browser, shop, tenant, live_server):
    second = widget_create(
        organization=tenant.organization,
        assistant_id=shop.assistant.id,
        title="Returns desk",
        primary_color="#7c3aed",
        allowed_domains=[shop.url],
        options={"instance": "returns"},
    )
    api_key = widget_client_key_get_or_create(organization=tenant.organization)
    shop.snippet += widget_embed_snippet(widget=second, base_url=live_server.url, client_id=api_key.client_id)
    context = browser.new_context()
    page = context.new_page()
    page.goto(shop.url)
    first_widget = page.locator("[data-supportai-instance=shop]")
    second_widget = page.locator("[data-supportai-instance=returns]")
    first_widget.locator(".launcher").wait_for(timeout=15000)
    second_widget.locator(".launcher").wait_for(timeout=15000)
    first_box = first_widget.locator(".launcher").bounding_box()
    second_box = second_widget.locator(".launcher").bounding_box()
    assert (
        first_box["y"] + first_box["height"] <= second_box["y"]
        or second_box["y"] + second_box["height"] <= first_box["y"]
    )

    second_widget.locator(".launcher").click()
    assert "Returns desk" in second_widget.locator("[role=dialog]").inner_text()
    second_widget.locator("textarea").fill("How do I return an item?")
    page.keyboard.press("Enter")
    second_widget.locator(".msg.assistant[data-id]").wait_for(timeout=30000)
    assert first_widget.locator(".msg.user").count() == 0  # the other widget's log is untouched
    first_widget.locator(".launcher").click()  # one panel at a time
    assert first_widget.locator("[role=dialog]").is_visible()
    assert not second_widget.locator("[role=dialog]").is_visible()
    keys = page.evaluate("() => Object.keys(window.localStorage)")
    assert f"supportai:{api_key.client_id}:returns" in keys
    session_id = page.evaluate(
        f"() => JSON.parse(localStorage.getItem('supportai:{api_key.client_id}:returns')).sessionId"
    )
    conversation = Conversation.objects.for_organization(tenant.organization).get(pk=session_id)
    assert str(conversation.widget_id) == str(second.id)
    context.close()


def test_the_js_sdk_on_a_page_with_widget_js_defaults_to_the_script_origin(browser, shop, live_server):
    """The shop's page loads widget.js from the SupportAI server and the SDK from itself: the
    SDK, given no baseUrl, talks to the server widget.js came from (not the shop)."""
    sdk = Path(settings.BASE_DIR) / "sdk" / "js" / "src"
    client_id = re.search(r'data-client-id="([^"]+)"', shop.snippet).group(1)
    with HostSite(shop.snippet) as page_site:
        page_site.files = {
            "/sdk/index.js": ((sdk / "index.js").read_bytes(), "text/javascript"),
            "/sdk/errors.js": ((sdk / "errors.js").read_bytes(), "text/javascript"),
            "/probe.js": (
                (
                    'import { ChatSupportAI } from "/sdk/index.js";\n'
                    f'const client = new ChatSupportAI({{ clientId: "{client_id}" }});\n'
                    "window.sdkBaseUrl = client.baseUrl;\n"
                    f'const minted = await client.getWidgetToken({{ clientId: "{client_id}", configId: "{shop.widget.id}" }});\n'
                    "window.sdkToken = minted.token_type;\n"
                ).encode(),
                "text/javascript",
            ),
        }
        page_site.snippet = shop.snippet + '\n<script type="module" src="/probe.js"></script>'
        shop.widget.allowed_domains = [page_site.url]
        shop.widget.save(update_fields=["allowed_domains"])
        page = browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        try:
            page.goto(page_site.url + "/")
            try:
                page.wait_for_function("() => window.sdkToken !== undefined", timeout=15_000)
            except Exception:
                raise AssertionError(f"the SDK did not finish: {problems}") from None
            assert page.evaluate("() => window.sdkBaseUrl") == live_server.url != page_site.url
            assert page.evaluate("() => window.sdkToken") == "Bearer"
        finally:
            page.close()


def test_the_widget_speaks_the_visitors_language_and_says_when_the_team_is_away(browser, shop, tenant):
    """Its own strings follow data-locale, else the browser's languages (en, es, de, fr, pt);
    outside business hours a visitor waiting for a person is not told "shortly"."""
    organization = tenant.organization
    organization.business_hours = {"mon": [["09:00", "09:01"]]}
    organization.business_holidays = [date.today().isoformat()]  # closed all of today, too
    organization.save(update_fields=["business_hours", "business_holidays"])
    english_snippet = shop.snippet

    # A German browser, no data-locale: German.
    context = browser.new_context(locale="de-DE")
    page = context.new_page()
    page.goto(shop.url)
    widget = page.locator(WIDGET)
    widget.locator(".launcher").click()
    panel = widget.locator("[role=dialog]")
    assert widget.locator("textarea").get_attribute("placeholder") == "Deine Frage…"
    assert "Unser Team ist gerade nicht da" in panel.inner_text()  # the away note, in German
    # The operator's own greeting is shown as written, in any language.
    assert "Hi! Ask me anything about your order" in panel.inner_text()
    widget.locator("textarea").fill("How do I return an item?")
    page.keyboard.press("Enter")
    widget.locator(".msg.assistant[data-id]").first.wait_for(timeout=30000)
    widget.locator("text=Mit einem Menschen sprechen").click()
    panel.locator("text=wir antworten dir hier, sobald wir zurück sind").wait_for(timeout=10000)
    assert "in Kürze" not in panel.inner_text()
    conversation = Conversation.objects.for_organization(organization).get()
    assert conversation.locale == "de-DE"
    context.close()

    # data-locale wins over the browser: an English browser on a Spanish shop page. A widget
    # left at the shipped English greeting greets in the visitor's language too.
    widget_update(widget=shop.widget, greeting=Widget._meta.get_field("greeting").default)
    shop.snippet = english_snippet.replace("<script ", '<script data-locale="es" ', 1)
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(shop.url)
    widget = page.locator(WIDGET)
    widget.locator(".launcher").click()
    assert widget.locator("textarea").get_attribute("placeholder") == "Escribe tu pregunta…"
    assert widget.locator("button[aria-label='Enviar mensaje']").count() == 1
    greeting = widget.locator(".log > .msg.assistant").first
    assert greeting.inner_text() == "¡Hola! ¿En qué podemos ayudarte?"
    widget.locator("textarea").fill("¿Cómo devuelvo un artículo?")
    page.keyboard.press("Enter")
    widget.locator(".msg.assistant[data-id]").first.wait_for(timeout=30000)
    latest = Conversation.objects.for_organization(organization).order_by("-created_at").first()
    assert latest.locale == "es"
    context.close()

    # A language the widget does not speak falls back to English.
    shop.snippet = english_snippet
    context = browser.new_context(locale="ja-JP")
    page = context.new_page()
    page.goto(shop.url)
    page.locator(WIDGET).locator(".launcher").click()
    assert page.locator(WIDGET).locator("textarea").get_attribute("placeholder") == "Type your question…"
    assert (
        page.locator(WIDGET).locator(".log > .msg.assistant").first.inner_text()
        == "Hi! How can we help you today?"
    )
    context.close()


def test_a_streaming_provider_answer_appears_in_the_widget_as_it_is_written(browser, shop, settings):
    """With an LLM that streams, the visitor watches the answer grow, not a spinner until the end."""
    from chat.llm import litellm_provider
    from testkit.llm_server import LoopbackLLM

    litellm_provider._lib()  # importing litellm costs seconds: not while the page waits
    llm = LoopbackLLM().start()
    try:
        settings.LLM_MODEL = "openai/loopback-model"
        settings.LLM_API_BASE = llm.api_base
        settings.LLM_API_KEY = "sk-loopback-not-a-real-key"
        settings.LLM_TIMEOUT = 30.0
        first = "Returns are free within 30 days of delivery."
        last = "Print the label from My orders and drop the parcel at any post office."
        # 8 characters per chunk, 0.15 s apart: about 2 s from the first word to the last.
        llm.default_behaviour = {"kind": "ok", "content": f"{first} {last} [1]", "delay": 0.15}
        context = browser.new_context()
        page = context.new_page()
        page.goto(shop.url)
        widget = page.locator(WIDGET)
        widget.locator(".launcher").click()
        widget.locator("textarea").fill("How do I return an item?")
        page.keyboard.press("Enter")
        answer = widget.locator(".msg.assistant").last
        page.wait_for_function(
            f"""() => {{
                const root = document.querySelector('{WIDGET}').shadowRoot;
                const bubbles = root.querySelectorAll('.msg.assistant');
                const text = bubbles[bubbles.length - 1].textContent;
                return text.includes('Returns are free');
            }}""",
            timeout=30000,
        )
        partial = answer.inner_text()
        assert "drop the parcel at any post office" not in partial  # shown while still arriving
        widget.locator(".msg.assistant[data-id]").last.wait_for(timeout=30000)
        assert (
            "drop the parcel at any post office"
            in widget.locator(".msg.assistant[data-id]").last.inner_text()
        )
        context.close()
    finally:
        llm.stop()


def test_a_returning_visitor_keeps_their_conversation_when_the_token_is_renewed(
    browser, shop, tenant, live_server, settings
):
    """The renewal's legitimate use, in the browser: the stored token has run out (the visitor
    was away), the widget presents it once to mint a new one, and the conversation is back. A
    copy of that old token presented again gets a stranger (widget/tests/test_widget_token_renewal.py)."""
    settings.WIDGET_VISITOR_RENEWAL_GRACE = timedelta(0)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(shop.url)
    widget = page.locator(WIDGET)
    widget.locator(".launcher").click()
    widget.locator("textarea").fill("What are your business hours?")
    page.keyboard.press("Enter")
    widget.locator(".msg.assistant[data-id]").first.wait_for(timeout=30000)
    storage_key = page.evaluate("() => Object.keys(localStorage).find((k) => k.startsWith('supportai:'))")

    def expire_stored_token() -> str:
        return page.evaluate(
            "(key) => { const s = JSON.parse(localStorage.getItem(key)); s.exp = 0;"
            " localStorage.setItem(key, JSON.stringify(s)); return s.token; }",
            storage_key,
        )

    for _away in range(2):  # twice: each renewal's token renews the next time
        old_token = expire_stored_token()
        with page.expect_response(lambda r: r.url.endswith("/api/v1/auth/widget-token")) as minted:
            page.reload()
        assert minted.value.status == 200
        widget.locator(".msg.assistant[data-id]").first.wait_for(timeout=15000)
        assert "What are your business hours?" in shadow_text(page)  # the same visitor's history
        new_token = page.evaluate("(key) => JSON.parse(localStorage.getItem(key)).token", storage_key)
        assert new_token != old_token
        assert widget_token_decode(new_token)["vis"] == widget_token_decode(old_token)["vis"]
    client_id = widget_client_key_get_or_create(organization=tenant.organization).client_id
    replay = requests.post(
        f"{live_server.url}/api/v1/auth/widget-token",
        json={"client_id": client_id, "config_id": str(shop.widget.pk), "visitor_token": old_token},
        headers={"Origin": shop.url},
        timeout=10,
    )
    assert replay.status_code == 200
    assert widget_token_decode(replay.json()["token"])["vis"] != widget_token_decode(old_token)["vis"]
    context.close()
