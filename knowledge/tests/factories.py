from __future__ import annotations

from assistants.models import Assistant


def assistant_make(*, organization, name: str = "Helper") -> Assistant:
    return Assistant.objects.create(organization=organization, name=name)


FAQ = [
    ("How do I get a refund?", "Refunds are issued to the original card within 5 business days of approval."),
    (
        "Do you ship internationally?",
        "Yes, we ship to over 40 countries; customs fees are paid by the buyer.",
    ),
    (
        "How can I reset my password?",
        "Click 'Forgot password' on the sign-in page and follow the emailed link.",
    ),
    ("What are your opening hours?", "Our support team is available Monday to Friday, 9am to 6pm CET."),
    ("Can I change my delivery address?", "You can edit the shipping address until the order is dispatched."),
]
