"""A PDF's headings, read from the fonts its lines are set in (issue 19 item 5): a line set
larger than the body text, or in a bold face at body size standing alone, becomes a Markdown
heading line, so the chunker starts a section (and, for a PDF, a chunk) at each. Body lines,
table rows, list items and running headers and footers stay text; a PDF set in one size and
weight reads exactly as before."""

import io
import json
from pathlib import Path

import pytest
from pypdf import PdfReader
from pypdf.generic import DictionaryObject, NameObject, NumberObject

from knowledge.chunking import pages_chunk, text_chunk
from knowledge.parsing import ParseError, _font_bold, _PageRuns, _pdf_blocks, pdf_parse
from testkit.documents import pdf_make, pdf_malformed

SHOPPER_SET = Path(__file__).resolve().parents[2] / "bench" / "data" / "shopper_questions.json"
BODY = "Every lamp comes with a three-year warranty covering the LED and the switch."


def _text(pages, **kwargs) -> list[str]:
    return [page["text"] for page in pdf_parse(pdf_make(pages, **kwargs), max_pages=50)["pages"]]


def _headings(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.startswith("#")]


def test_lines_set_larger_than_the_body_are_headings_with_levels_by_size_and_chunks_per_heading():
    page = [
        ("Lumen Home product sheet", 20, True),
        ("Aria desk lamp", 15, True),
        "The Aria has a dimmable warm-white LED and a USB-C port for charging a phone.",
        ("Care", 15),  # larger, not bold: still a heading
        "Wipe the linen shade with a dry microfibre cloth.",
        ("Spare parts", 13, True),
        "Shades and bases are sold separately.",
        ("Warranty", 15, True),
        BODY,
    ]
    parsed = pdf_parse(pdf_make([page]), max_pages=5)
    [result] = parsed["pages"]
    assert result["sections_apart"] is True
    assert result["text"] == (
        "# Lumen Home product sheet\n\n## Aria desk lamp\n\n"
        "The Aria has a dimmable warm-white LED and a USB-C port for charging a phone.\n\n"
        "## Care\n\nWipe the linen shade with a dry microfibre cloth.\n\n"
        "### Spare parts\n\nShades and bases are sold separately.\n\n"
        f"## Warranty\n\n{BODY}"
    )
    chunks = text_chunk(result["text"], page=1, sections_apart=True)
    assert [(chunk.heading, chunk.content.split("\n")[-1]) for chunk in chunks] == [
        ("Aria desk lamp", "The Aria has a dimmable warm-white LED and a USB-C port for charging a phone."),
        ("Care", "Wipe the linen shade with a dry microfibre cloth."),
        ("Spare parts", "Shades and bases are sold separately."),
        ("Warranty", BODY),
    ]
    assert chunks[0].content.startswith("Lumen Home product sheet\n")  # the title goes with the first
    # Without `sections_apart` (every other format) short sections still share a chunk.
    assert len(text_chunk(result["text"], page=1)) < len(chunks)


def test_a_bold_line_at_body_size_standing_alone_is_a_heading_one_level_below_the_sized_ones():
    page = [
        ("Product guide", 16, True),
        ("How do I clean the shade?", 11, True),
        "Wipe it with a dry cloth.",
        ("Returns", 11, True),
        "You can return a lamp within 30 days of delivery for a full refund.",
    ]
    [text] = _text([page])
    assert _headings(text) == ["# Product guide", "## How do I clean the shade?", "## Returns"]


def test_a_heading_printed_on_two_lines_is_one_heading_and_a_large_paragraph_is_none():
    page = [
        ("Setting up the Aria desk lamp with a", 15, True),
        ("clamp or the weighted base", 15, True),
        "Screw the clamp to the desk edge, then fit the arm into it.",
        ("This guide covers every lamp we sell. Read it before", 14),
        ("you plug a lamp in, and keep it for later.", 14),
        BODY,
    ]
    [text] = _text([page])
    assert _headings(text) == ["# Setting up the Aria desk lamp with a clamp or the weighted base"]
    assert "\nThis guide covers every lamp we sell. Read it before\nyou plug a lamp in" in text


def test_one_size_and_weight_reads_exactly_as_before():
    """No size or weight differences: byte-identical to today's text (pypdf's extract_text
    through the block rules), and no `sections_apart`; so is a document set all in bold, or all
    in 14 pt."""
    documents = [
        [
            "Returns and refunds\nYou can return any item within 30 days of delivery for a full "
            "refund, no questions asked, as long as it is unused.\nShipping\n- Standard: 3-5 days",
            "Size Chest (in) Waist (in)\nS 34-36 28-30\nM 38-40 32-34\nPage 2",
        ],
        [[("Returns and refunds", 11, True), (BODY, 11, True), ("Shipping", 11, True), (BODY, 11, True)]],
        [[("Returns and refunds", 14), (BODY, 14), ("Shipping", 14)]],
        json.loads(SHOPPER_SET.read_text())["pdf"]["pages"],  # the shopper walk's product guide
    ]
    for pages in documents:
        data = pdf_make(pages)
        parsed = pdf_parse(data, max_pages=5)
        expected = [
            {"page": number, "text": _pdf_blocks(page.extract_text())}
            for number, page in enumerate(PdfReader(io.BytesIO(data)).pages, start=1)
        ]
        assert parsed["pages"] == expected
        assert not any(_headings(page["text"]) for page in parsed["pages"])


def test_running_headers_and_footers_table_rows_and_list_items_are_not_headings():
    def page(number: int) -> list:
        return [
            ("Lumen Home - Product guide", 14, True),  # a running header, larger and bold
            (f"Section {number}", 16, True),
            BODY,
            (["Model", "Height", "Shade"], 11, True),  # a bold table header, cells far apart
            (["Aria", "45 cm", "30 cm"], 11),
            ("Size Price", 11, True),  # a bold header over rows of figures
            "S 34-36 28-30",
            ("- Free returns", 11, True),  # a bold list item
            BODY,
            ("1. Unplug the lamp", 11, True),
            BODY,
            ("Wipe the shade.", 11, True),  # a bold sentence
            BODY,
            ("Bold paragraph first line", 11, True),  # bold text of two lines: emphasis
            ("and its second line", 11, True),
            BODY,
            (f"Page {number} of 3", 14, True),  # a running footer
        ]

    texts = _text([page(1), page(2), page(3)])
    for number, text in enumerate(texts, start=1):
        assert _headings(text) == [f"# Section {number}"]
        assert "Lumen Home - Product guide" in text and f"Page {number} of 3" in text


def test_the_visitor_never_raises_and_a_surprise_costs_the_page_its_headings_not_its_text():
    runs = _PageRuns()
    runs.visit("Care", ["x", 0, 0, 1, 0, 0], [1, 0, 0, 1, 0, 0], None, 15)  # a matrix of garbage
    runs.visit("Body", [1, 0, 0, 1, 0, 0], [1, 0, 0, 1, 0, 0], None, float("nan"))
    assert runs.broken and runs.lines("CareBody") is None
    fine = _PageRuns()
    fine.visit("Care\n", [1, 0, 0, 1, 0, 0], [1, 0, 0, 1, 50, 700], DictionaryObject(), 15)
    assert not fine.broken
    assert fine.lines("Care\n") is not None
    assert fine.lines("Other text") is None  # runs that do not spell the page: no headings


def test_bold_is_read_from_the_font_name_weight_or_flags():
    def font(**entries) -> DictionaryObject:
        return DictionaryObject({NameObject(key): value for key, value in entries.items()})

    assert _font_bold(font(**{"/BaseFont": NameObject("/ABCDEF+Arial-BoldMT")}))
    assert _font_bold(font(**{"/BaseFont": NameObject("/Inter-SemiBold")}))
    assert not _font_bold(font(**{"/BaseFont": NameObject("/Helvetica")}))
    descriptor = font(**{"/FontWeight": NumberObject(700)})
    assert _font_bold(font(**{"/BaseFont": NameObject("/F"), "/FontDescriptor": descriptor}))
    flags = font(**{"/Flags": NumberObject(1 << 18)})
    assert _font_bold(font(**{"/BaseFont": NameObject("/F"), "/FontDescriptor": flags}))
    broken = font(**{"/BaseFont": NameObject("/F"), "/FontDescriptor": NumberObject(3)})
    assert not _font_bold(broken)


def test_malformed_pdfs_fail_as_before():
    with pytest.raises(ParseError) as raised:
        pdf_parse(pdf_malformed(), max_pages=5)
    assert raised.value.code == "malformed"
    with pytest.raises(ParseError) as raised:
        pdf_parse(pdf_make([[("x", 16)]] * 3), max_pages=2)
    assert raised.value.code == "page_limit"


def test_a_pdf_printed_by_chromium_gets_its_headings_and_nothing_else():
    """data/chromium_product_sheet.pdf: an HTML product sheet (h1, h2, a paragraph opening with
    a bold "Note:", a list with a bold word, a table with a header row, a bold paragraph
    "Warranty" alone, a page break) printed to A5 by headless Chromium (Skia/PDF, subset
    TrueType fonts LiberationSans and LiberationSans-Bold) with a header and a page-number
    footer on each page, the way a shop exports its product sheets."""
    data = (Path(__file__).parent / "data" / "chromium_product_sheet.pdf").read_bytes()
    pages = pdf_parse(data, max_pages=5)["pages"]
    assert [_headings(page["text"]) for page in pages] == [
        ["# Lumen Home product sheet", "## Aria desk lamp", "## Care", "## Sizes", "### Warranty"],
        ["## Shipping"],
    ]
    first = pages[0]["text"]
    assert "\n\nNote: the Aria ships without a plug adapter" in first
    # Its table's rows, each cell a run of its own, read as an HTML table's under a header.
    assert (
        "\n\nModel: Aria; Height: 45 cm; Shade: 30 cm.\n\nModel: Aria XL; Height: 60 cm; Shade: 40 cm.\n\n"
        in first
    )
    assert first.endswith("\n\nLumen Home - product sheet\n\nPage 1 of 2")
    chunks = [
        chunk for page in pages for chunk in text_chunk(page["text"], page=page["page"], sections_apart=True)
    ]
    assert [(chunk.heading, chunk.page) for chunk in chunks] == [
        ("Aria desk lamp", 1),
        ("Care", 1),
        ("Sizes", 1),
        ("Warranty", 1),
        ("Shipping", 2),
    ]


WARRANTY_SHEET = [
    [
        ("Lumen Home product sheet", 20, True),
        ("Care", 15, True),
        "Wipe the linen shade with a dry microfibre cloth.",
        ("Warranty", 15, True),
        BODY,
    ],
    [
        "Claims need the order number and a photo of the fault; a new lamp ships in a week.",
        ("Shipping", 15, True),
        "Orders leave our warehouse within two business days.",
    ],
    ["Free shipping starts at $50. Parcels to Alaska and Hawaii take a week longer."],
]


def test_a_section_that_runs_onto_the_next_page_keeps_its_heading_there():
    """The heading in force at the end of a page goes on over the next page's text before its
    first heading: as the chunk's heading, and as its first line (as a heading printed over a
    chunk shows); the chunk keeps its own page. A page without headings of its own carries the
    heading on further."""
    pages = pdf_parse(pdf_make(WARRANTY_SHEET), max_pages=5)["pages"]
    assert [page.get("sections_apart", False) for page in pages] == [True, True, False]
    chunks = pages_chunk(pages)
    assert [(chunk.heading, chunk.page, chunk.content) for chunk in chunks] == [
        ("Care", 1, "Lumen Home product sheet\n\nCare\nWipe the linen shade with a dry microfibre cloth."),
        ("Warranty", 1, f"Warranty\n{BODY}"),
        (
            "Warranty",
            2,
            "Warranty\nClaims need the order number and a photo of the fault; a new lamp ships in a week.",
        ),
        ("Shipping", 2, "Shipping\nOrders leave our warehouse within two business days."),
        (
            "Shipping",
            3,
            "Shipping\nFree shipping starts at $50. Parcels to Alaska and Hawaii take a week longer.",
        ),
    ]
    # The pages' text is the parser's, unchanged (the document's hash and full text with it).
    assert pages[1]["text"].startswith("Claims need the order number")
    # Each page on its own (before): the continued half had no heading.
    alone = [
        chunk
        for page in pages
        for chunk in text_chunk(
            page["text"], page=page["page"], sections_apart=page.get("sections_apart", False)
        )
    ]
    assert [(chunk.heading, chunk.content[:6]) for chunk in alone if chunk.page > 1] == [
        ("", "Claims"),
        ("Shipping", "Shippi"),
        ("", "Free s"),
    ]


def test_no_heading_is_carried_without_headings_read_from_fonts():
    """A PDF set in one size and weight, and any other format's pages (headings of their own, no
    `sections_apart`), are chunked page by page exactly as before."""
    documents = [
        pdf_parse(pdf_make([[BODY, BODY], [BODY, "Claims need the order number."]]), max_pages=5)["pages"],
        [
            {"page": 1, "text": "# Warranty\n\n" + BODY},
            {"page": 2, "text": "Claims need the order number.\n\n## Shipping\n\nOrders ship in two days."},
        ],
    ]
    for pages in documents:
        before = [chunk for page in pages for chunk in text_chunk(page["text"], page=page["page"])]
        assert pages_chunk(pages) == before
    assert [chunk.heading for chunk in pages_chunk(documents[1])] == [
        "Warranty",
        "",
    ]  # "Shipping" shares the short page's chunk


def test_a_table_under_a_header_reads_as_rows_that_name_their_columns():
    """Found on a new-user walk: a shop's returns policy printed to PDF gave its shipping table as
    "Canada 7-10 business days, $14 3-4 business days, $32", and the answer to "How much does
    shipping to Canada cost?" could not say which price was which. A table whose cells are runs
    of their own, under a header, reads as an HTML table does; without a header, with one row,
    or two columns of prose, the text is pypdf's as before."""
    table = [
        (["Destination", "Standard", "Express"], 11, True),
        (["Canada", "7-10 business days, $14", "3-4 business days, $32"], 11),
        (["Germany", "8-12 business days, $22", "4-5 business days, $45"], 11),
    ]
    [text] = _text([["Shipping rates", *table, "Orders over $75 ship free within the United States."]])
    assert text == (
        "Shipping rates\n\n"
        "Destination: Canada; Standard: 7-10 business days, $14; Express: 3-4 business days, $32.\n\n"
        "Destination: Germany; Standard: 8-12 business days, $22; Express: 4-5 business days, $45.\n\n"
        "Orders over $75 ship free within the United States."
    )
    unchanged = [
        ["Shipping rates", *table[1:]],  # no header
        ["Shipping rates", *table[:2]],  # one row
        [  # two columns of prose under two short labels
            (["Returns", "Shipping"], 11),
            (["You can return any item", "We ship every order from"], 11),
            (["within 30 days of delivery.", "our warehouse in Portland."], 11),
        ],
    ]
    for pages in unchanged:
        data = pdf_make([pages])
        [page] = PdfReader(io.BytesIO(data)).pages
        assert pdf_parse(data, max_pages=5)["pages"][0]["text"] == _pdf_blocks(page.extract_text())
