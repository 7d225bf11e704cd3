"""A shop's product PDF through the real ingestion and the offline answerer (issue 19 item 5).

Found on a new-user walk: a one-page product sheet (sections "Aria desk lamp", "Care",
"Warranty", each a short paragraph under a heading set in a larger font) became one passage
without headings, and "Does the Aria desk lamp have a USB port?" or "How do I clean the shade?"
asked on their own got "I don't know": the relevance gate weighed the question against the
whole mixed passage. The parser now reads the larger lines as headings, so each section is a
section of its own, with its heading over the sentences under it."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from chat import services
from knowledge.models import Chunk
from knowledge.services import file_source_create
from knowledge.services.ingestion import source_ingest
from testkit.documents import pdf_make

pytestmark = pytest.mark.django_db

PRODUCT_SHEET = [
    ("Lumen Home product sheet", 20, True),
    ("Aria desk lamp", 15, True),
    "The Aria has a dimmable warm-white LED, a weighted oak base and a USB-C port for",
    "charging a phone. It costs $89.",
    ("Care", 15, True),
    "Unplug the lamp before you clean it. Wipe the linen shade with a dry microfibre cloth;",
    "water or sprays stain the linen.",
    ("Warranty", 15, True),
    "Every lamp comes with a three-year warranty covering the LED and the switch.",
    ("Shipping", 15, True),
    "Orders leave our warehouse within two business days.",
    ("Lumen Home - lumen.example - Page 1", 8),
]


def _ingest(
    organization, data: bytes, *, name: str = "product-sheet.pdf", title: str = "Product sheet"
) -> None:
    source = file_source_create(
        organization=organization,
        title=title,
        file_type="pdf",
        uploaded_file=SimpleUploadedFile(name, data),
    )
    assert source_ingest(source_id=source.pk) == "ready"


def _ask(organization, assistant, question: str):
    session = services.session_create(organization=organization, assistant=assistant)
    return services.message_post(conversation=session, content=question)


def test_questions_on_one_section_of_a_product_pdf_are_answered_from_it(tenant, assistant, offline):
    _ingest(tenant.organization, pdf_make([PRODUCT_SHEET], title="Product sheet"))
    chunks = Chunk.objects.for_organization(tenant.organization)
    headings = set(chunks.values_list("heading", flat=True))
    assert headings and headings <= {"Aria desk lamp", "Care", "Warranty", "Shipping"}

    usb = _ask(tenant.organization, assistant, "Does the Aria desk lamp have a USB port?")
    assert usb.answered and "USB-C port" in usb.content
    assert "microfibre" not in usb.content and "warranty" not in usb.content.lower()
    clean = _ask(tenant.organization, assistant, "How do I clean the shade?")
    assert clean.answered and "microfibre cloth" in clean.content
    assert "USB" not in clean.content
    warranty = _ask(tenant.organization, assistant, "How long is the warranty on a lamp?")
    assert warranty.answered and "three-year warranty" in warranty.content
    for message in (usb, clean, warranty):
        assert [source["title"] for source in message.sources][:1] == ["Product sheet"]
        assert "#" not in message.content

    unrelated = _ask(tenant.organization, assistant, "Can I pick up my order at your Denver store?")
    assert not unrelated.answered
    assert "USB" not in unrelated.content and "microfibre" not in unrelated.content


# A section that runs across the page break: "Warranty" starts at the foot of page 1 and its
# second half is at the top of page 2, which says "warranty" nowhere. Each page chunked alone,
# that half was a passage about nothing, and "What happens if my lamp is faulty under
# warranty?" was answered with page 1's "Every lamp comes with a three-year warranty…".
TWO_PAGE_SHEET = [
    [
        ("Lumen Home product sheet", 20, True),
        ("Care", 15, True),
        "Unplug the lamp before you clean it. Wipe the linen shade with a dry microfibre cloth.",
        ("Warranty", 15, True),
        "Every lamp comes with a three-year warranty covering the LED and the switch.",
    ],
    [
        "Send us the order number and a photo of the fault, and a new lamp ships within a week.",
        ("Shipping", 15, True),
        "Orders leave our warehouse within two business days.",
    ],
]


def test_a_question_on_a_section_continued_on_the_next_page_is_answered_from_that_section(
    tenant, assistant, offline
):
    _ingest(tenant.organization, pdf_make(TWO_PAGE_SHEET, title="Product sheet"))
    continued = Chunk.objects.for_organization(tenant.organization).get(content__contains="Send us")
    assert (continued.heading, continued.page) == ("Warranty", 2)
    assert continued.content.startswith("Warranty\nSend us the order number")

    faulty = _ask(tenant.organization, assistant, "What happens if my lamp is faulty under warranty?")
    assert faulty.answered and "order number and a photo of the fault" in faulty.content
    assert "Orders leave our warehouse" not in faulty.content and "microfibre" not in faulty.content
    assert "#" not in faulty.content
    assert [(source["title"], source.get("page")) for source in faulty.sources][:1] == [("Product sheet", 2)]


# A returns-and-shipping policy printed to PDF, with its shipping rates in a table: pypdf gives
# each row as one line, its cells joined by spaces and no closing punctuation
# ("Canada 7-10 business days, $14 3-4 business days, $32"). Found on a new-user walk: the rows
# were taken for headings and left out of the answer, and "How much does shipping to Canada
# cost?" was answered with the sentence above the table.
SHIPPING_POLICY = [
    ("Returns and Shipping Policy", 20, True),
    ("Shipping rates", 15, True),
    "We ship from our warehouse in Portland, Oregon. Orders over $75 ship free within the United States.",
    (["Destination", "Standard", "Express"], 11, True),
    (["United States", "5-7 business days, $6", "2 business days, $18"], 11),
    (["Canada", "7-10 business days, $14", "3-4 business days, $32"], 11),
    (["Germany", "8-12 business days, $22", "4-5 business days, $45"], 11),
    ("Exchanges", 15, True),
    "We do not offer direct exchanges. Return the item for a refund and order the item you want.",
]


def test_a_row_of_a_pdf_table_answers_the_question_about_it(tenant, assistant, offline):
    _ingest(tenant.organization, pdf_make([SHIPPING_POLICY], title="Returns and shipping policy"))
    canada = _ask(tenant.organization, assistant, "How much does shipping to Canada cost?")
    # The row names its columns (the parser reads the table under its header, as HTML's).
    assert canada.answered and (
        "Destination: Canada; Standard: 7-10 business days, $14; Express: 3-4 business days, $32."
        in canada.content
    )
    assert "Germany" not in canada.content and "United States" not in canada.content.split("\n")[-1]
    germany = _ask(tenant.organization, assistant, "What does express shipping to Germany cost?")
    assert germany.answered and (
        "Destination: Germany; Standard: 8-12 business days, $22; Express: 4-5 business days, $45."
        in germany.content
    )


# A shop's returns and shipping policy (headings, a shipping table) printed to PDF by headless
# Chromium, as the new-user walk made it.
RETURNS_POLICY = Path(__file__).parent / "data" / "returns_policy_chromium.pdf"


# The walk's Q&A pairs, next to the policy.
WALK_PAIRS = [
    (
        "Do you ship internationally?",
        "Yes. We ship to the United States, Canada, Germany and the United Kingdom. See our shipping "
        "rates for prices and delivery times.",
    ),
    (
        "Can I cancel my order?",
        "You can cancel an order within 2 hours of placing it by emailing help@lumenhome.example. "
        "After that, the order is packed and you can return it once it arrives.",
    ),
    (
        "Do you offer assembly instructions?",
        "Yes. Every lamp comes with printed assembly instructions in the box, and PDF versions are on "
        "each product page.",
    ),
    (
        "How long does a refund take?",
        "Refunds reach your original payment method within 5 business days after we receive your return.",
    ),
]


def test_of_two_relevant_sections_the_one_that_answers_is_quoted(tenant, assistant, offline):
    """Found on a new-user walk: "How long do I have to return something?" was answered from the
    "Damaged or defective items" section ("… you do not need to return the broken item."), which
    the gate weighs a little more relevant, not from "Returns window". Of the relevant passages,
    one whose closest sentence is far closer in meaning is quoted instead; a question on damage
    still gets the damage section."""
    from knowledge.services import qa_create

    # Uploaded in the dashboard, a file is titled with its name.
    _ingest(
        tenant.organization,
        RETURNS_POLICY.read_bytes(),
        name="returns-policy.pdf",
        title="returns-policy.pdf",
    )
    for question, answer in WALK_PAIRS:
        qa_create(organization=tenant.organization, question=question, answer=answer)
    window = _ask(tenant.organization, assistant, "How long do I have to return something?")
    assert window.answered and "within 30 days of delivery" in window.content
    assert "broken" not in window.content
    assert [source.get("page") for source in window.sources][:1] == [1]
    broken = _ask(tenant.organization, assistant, "My lamp arrived broken, what now?")
    assert broken.answered and "contact us within 7 days of delivery" in broken.content


def test_a_question_naming_a_country_by_its_abbreviation_quotes_its_row(tenant, assistant, offline):
    """Found on a new-user walk: "UK" never matched the shipping table's "United Kingdom" row
    (the analyser reads a country's common abbreviation as its name: `analysis.regions_expand`),
    so "How much is shipping to the UK?" was not answered from it."""
    from knowledge.services import qa_create

    _ingest(
        tenant.organization,
        RETURNS_POLICY.read_bytes(),
        name="returns-policy.pdf",
        title="returns-policy.pdf",
    )
    for question, answer in WALK_PAIRS:
        qa_create(organization=tenant.organization, question=question, answer=answer)
    row = "Destination: United Kingdom; Standard: 8-12 business days, $20; Express: 4-5 business days, $42."
    cost = _ask(tenant.organization, assistant, "How much is shipping to the UK?")
    assert cost.answered and row in cost.content
    assert "Germany" not in cost.content and "Canada" not in cost.content
    # The dotted form, answered by the Q&A pair that names the country.
    ship = _ask(tenant.organization, assistant, "Do you ship to the U.K.?")
    assert ship.answered and "United Kingdom" in ship.content


# The walk's crawled help page on lamp care: three short sections under headings of their own,
# which share one chunk (each is under `chunking.MIN_SECTION_CHARS`).
CARE_PAGE_HTML = (
    "<html><head><title>Lamp care and warranty</title></head><body><main><h1>Lamp care and warranty</h1>"
    "<h2>Cleaning</h2><p>Unplug the lamp and let the bulb cool. Wipe the shade with a dry microfiber "
    "cloth. Do not use water or cleaning sprays on fabric shades.</p>"
    "<h2>Bulbs</h2><p>All our lamps take standard E26 LED bulbs up to 10 watts. Bulbs are not included.</p>"
    "<h2>Warranty</h2><p>Every lamp has a 2-year warranty against electrical and manufacturing defects. "
    "The warranty does not cover damage from drops or misuse.</p></main></body></html>"
)


def test_a_question_on_one_short_section_of_a_merged_chunk_is_answered(tenant, assistant, offline):
    """Found on a new-user walk: "Is the warranty 2 years?" was refused: the care page's chunk
    (cleaning, bulbs, warranty) is 0.33 from it, under the gate's 0.4 floor on the full-text
    cosine, while its warranty section alone is 0.48. The floor now looks at the closest of a
    passage's sections (`grounding._sections_close`); the relevance is the gate's as before."""
    from knowledge.services import qa_create

    _ingest(
        tenant.organization,
        RETURNS_POLICY.read_bytes(),
        name="returns-policy.pdf",
        title="returns-policy.pdf",
    )
    source = file_source_create(
        organization=tenant.organization,
        title="Lamp care and warranty",
        file_type="html",
        uploaded_file=SimpleUploadedFile("lamp-care.html", CARE_PAGE_HTML.encode()),
    )
    assert source_ingest(source_id=source.pk) == "ready"
    assert Chunk.objects.for_organization(tenant.organization).filter(source=source).count() == 1
    for question, answer in WALK_PAIRS:
        qa_create(organization=tenant.organization, question=question, answer=answer)

    for question in ("Is the warranty 2 years?", "How do I clean the shade?"):
        answer = _ask(tenant.organization, assistant, question)
        assert answer.answered, question
        assert [item["title"] for item in answer.sources][:1] == ["Lamp care and warranty"]
    warranty = _ask(tenant.organization, assistant, "Is the warranty 2 years?")
    assert "2-year warranty" in warranty.content and "microfiber" not in warranty.content
    for question in ("Can I pick up my order at your Denver store?", "Do you sell bicycles?"):
        assert not _ask(tenant.organization, assistant, question).answered, question
