"""The demo organization `make run` creates on first start."""

from __future__ import annotations

from django.db import transaction

from organizations.services import api_key_create, organization_create

DEMO_SLUG = "demo"
DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password-123"

DEMO_FAQ = [
    (
        "What are your business hours?",
        "We are open Monday to Friday, 9 AM to 6 PM EST. Our chat assistant answers around the clock.",
        ["hours", "support"],
    ),
    (
        "How do I reset my password?",
        'Go to Settings > Security and click "Reset Password"; we email you a link that is valid for one hour.',
        ["password", "security"],
    ),
    (
        "What is your refund policy?",
        "You can ask for a full refund within 30 days of purchase from Billing > Orders, no questions asked.",
        ["billing", "refunds"],
    ),
    (
        "Do you ship internationally?",
        "Yes, we ship to over 40 countries. International delivery takes 5 to 10 business days.",
        ["shipping"],
    ),
    (
        "How can I track my order?",
        "Open the tracking link in your confirmation email, or see Orders > Track in your account.",
        ["orders", "shipping"],
    ),
    (
        "How do I contact a human?",
        "Ask the assistant for a human at any time; a teammate takes over the chat during business hours.",
        ["support"],
    ),
]


@transaction.atomic
def demo_seed() -> dict:
    organization = organization_create(
        name="Demo Company", slug=DEMO_SLUG, owner_email=DEMO_EMAIL, owner_password=DEMO_PASSWORD
    )
    api_key, secret = api_key_create(organization=organization, name="Demo key")
    result = {"organization": organization.slug, "client_id": api_key.client_id, "client_secret": secret}
    result.update(_demo_chat(organization=organization))
    result.update(_demo_knowledge(organization=organization))
    result.update(_demo_widget(organization=organization))
    return result


def _demo_chat(*, organization) -> dict:
    """The demo assistant and the FAQ it answers from (the offline answerer needs no LLM)."""
    from assistants.services import assistant_create
    from knowledge.services import qa_create

    assistant = assistant_create(
        organization=organization,
        name="Demo Support",
        description="Answers Demo Company's customers from its knowledge base.",
        tone="friendly",
        language="en",
        default_tasks=["answer_questions", "provide_support"],
        instructions="Keep answers short. Offer a human when the knowledge base does not cover a question.",
    )
    for question, answer, tags in DEMO_FAQ:
        qa_create(organization=organization, question=question, answer=answer, tags=tags, source="demo")
    return {"assistant_id": str(assistant.id)}


DEMO_HANDBOOK = """# Demo Company customer handbook

## Shipping
Orders placed before 2 PM EST ship the same business day. Standard delivery within the US takes
3 to 5 business days; express delivery takes 1 to 2 business days and costs $15.
International orders ship from our Rotterdam warehouse and take 5 to 10 business days.

## Returns and exchanges
Unused items can be returned within 30 days in their original packaging. Print the prepaid
return label from Orders > Returns. Exchanges for a different size ship as soon as the
original item is scanned by the carrier.

## Warranty
Every Demo Company device has a two-year limited warranty covering manufacturing defects.
Accidental damage is not covered. To file a claim, send the serial number (on the bottom of
the device) and a photo of the fault to warranty@demo.example.

## Accounts and security
Two-factor authentication is available under Settings > Security. If you lose access to your
authenticator app, use one of your backup codes or ask a human teammate to verify your identity.
"""


def _demo_knowledge(*, organization) -> dict:
    """A handbook file, ingested by the Celery worker once `make run` starts it (the demo shows
    a file going pending -> processing -> ready in the dashboard)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from knowledge.services import file_source_create

    source = file_source_create(
        organization=organization,
        title="Customer handbook",
        file_type="markdown",
        uploaded_file=SimpleUploadedFile("customer-handbook.md", DEMO_HANDBOOK.encode(), "text/markdown"),
    )
    return {"handbook_source_id": str(source.id)}


def _demo_widget(*, organization) -> dict:
    """The demo widget, on the organization's first assistant (its knowledge answers)."""
    from widget.services import widget_create

    widget = widget_create(
        organization=organization,
        title="Demo Company support",
        greeting="Hi! I answer from Demo Company's knowledge base. What can I help you with?",
        suggested_questions=["What are your business hours?", "How do I reset my password?"],
        options={"instance": "demo-widget"},
    )
    return {"widget_id": str(widget.id)}
