import pytest

from testkit.llm_server import LoopbackLLM


@pytest.fixture
def llm_server():
    server = LoopbackLLM().start()
    yield server
    server.stop()


@pytest.fixture
def llm(llm_server, settings):
    """Points the engine at the loopback provider through litellm."""
    settings.LLM_MODEL = "openai/loopback-model"
    settings.LLM_API_BASE = llm_server.api_base
    settings.LLM_API_KEY = "sk-loopback-not-a-real-key"
    settings.LLM_TIMEOUT = 5.0
    settings.LLM_MAX_RETRIES = 2
    return llm_server


@pytest.fixture
def offline(settings):
    settings.LLM_MODEL = ""
    settings.LLM_PROVIDER = ""
    return settings


@pytest.fixture
def assistant(tenant):
    from assistants.models import Assistant

    return Assistant.objects.create(
        organization=tenant.organization,
        name="Acme Helper",
        tone="friendly",
        language="en",
        default_tasks=["answer_questions", "provide_support"],
        instructions="Sign off with 'Have a great day!'.",
    )


@pytest.fixture
def session(tenant, assistant):
    from chat import services

    return services.session_create(organization=tenant.organization, assistant=assistant, visitor_id="v1")


def stream_abandon(client, url: str) -> None:
    """Ask for a streamed answer, read its first two events, then go away: closing the response
    is what the WSGI server does when the client disconnects."""
    response = client.post(
        url, {"content": "Tell me everything"}, format="json", HTTP_ACCEPT="text/event-stream"
    )
    stream = iter(response.streaming_content)
    next(stream)
    next(stream)
    response.close()


@pytest.fixture
def widget(tenant, assistant):
    from widget.models import Widget

    return Widget.objects.create(organization=tenant.organization, assistant=assistant, title="Acme support")


@pytest.fixture
def faq(tenant):
    """A few Q&A pairs in the tenant's knowledge base."""
    from knowledge.services import qa_create

    pairs = [
        ("What are your business hours?", "We are open Monday to Friday, 9 AM to 6 PM EST.", ["hours"]),
        (
            "How do I reset my password?",
            'Go to Settings > Security and click "Reset Password".',
            ["password"],
        ),
        (
            "Do you ship internationally?",
            "Yes, we ship to over 40 countries; delivery takes 5-10 business days.",
            [],
        ),
        ("What is your refund policy?", "You can get a full refund within 30 days of purchase.", ["refunds"]),
    ]
    return [
        qa_create(organization=tenant.organization, question=question, answer=answer, tags=tags)
        for question, answer, tags in pairs
    ]


def widget_client(*, organization, widget=None, visitor_id=None):
    from rest_framework.test import APIClient

    from widget.tokens import widget_token_issue

    token, _ = widget_token_issue(
        organization_id=organization.id, widget_id=widget.id if widget else None, visitor_id=visitor_id
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def smtp_sink(settings):
    """A real SMTP server on loopback; Django's mail goes to it."""
    from chat.tests.smtp_sink import SmtpSink

    sink = SmtpSink().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", sink.port, 5
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield sink
    sink.stop()
