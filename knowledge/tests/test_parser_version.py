"""`knowledge.chunking.PARSER_VERSION` must go up whenever parsing or chunking changes what chunks
the same document yields: it is how `manage.py knowledge_reparse` and a re-sync know stored
knowledge was cut the old way (docs/knowledge.md, "After upgrading"). This pins the chunks of a
small corpus that exercises every parser and the chunker's rules; a change to them fails here
until the version is raised and the new digest recorded beside it."""

from __future__ import annotations

import hashlib
import json

from knowledge.chunking import PARSER_VERSION, pages_chunk
from knowledge.parsing import document_parse
from testkit.documents import docx_make, pdf_make
from testkit.sites import html_page

# PARSER_VERSION -> the digest of CORPUS's chunks under it. Add a line, never edit one (a
# document added to CORPUS changes every digest: record the older ones from those versions' code,
# as 1's was recorded again when the PDF table joined, from the parser before eca5b45).
DIGESTS = {
    1: "4411e2ce1de3a87dd2dc6db367b4fa6ad37821533895cbff35b8ae5fff434166",
    2: "834f7299afa576b1ddcda3f03608d6dad4c5a7dc8157e16238d0ec440e2963e8",
}

WARRANTY = "Every lamp comes with a three-year warranty covering the LED and the switch. " * 12
CORPUS = [
    (
        "pdf",
        pdf_make(
            [
                [("Lumen Home", 20, True), ("Warranty", 15, True), WARRANTY, "Claims need the order number."],
                [
                    "The warranty does not cover shades damaged by heat.",
                    ("Care", 15, True),
                    "Wipe with a dry cloth.",
                ],
            ],
            title="Lumen",
        ),
    ),
    ("pdf", pdf_make(["One size and weight only. " * 40, "#1 best seller in lamps."])),
    (  # a table under a header row, each cell a run of its own (version 2 reads it as rows)
        "pdf",
        pdf_make(
            [
                [
                    "Shipping rates",
                    (["Destination", "Standard", "Express"], 11, True),
                    (["Canada", "7-10 business days, $14", "3-4 business days, $32"], 11),
                    (["Germany", "8-12 business days, $22", "4-5 business days, $45"], 11),
                ]
            ]
        ),
    ),
    (
        "html",
        html_page(
            "Shipping",
            "<h2>Rates</h2><table><tr><th>Destination</th><th>Standard</th></tr>"
            "<tr><td>Canada</td><td>5-8 days, $12</td></tr></table>"
            "<h2>Paying</h2><ul><li>PayPal</li><li>Cards</li></ul><p># of items: 3 per order.</p>"
            "<ol><li>Print the label.</li><li>Drop it off.</li></ol>",
        ),
    ),
    (
        "markdown",
        b"# Returns\n\nFree within 30 days.\n\n## Exchanges\n\n| Size | Stock |\n|---|---|\n| M | 4 |\n",
    ),
    ("text", b"# not a heading in plain text\n\nParagraph one.\n\n- item one\n- item two\n"),
    (
        "docx",
        docx_make([("Setup", "Plug the lamp in. " * 30), ("Cleaning", "Use a dry cloth.")], title="Aria"),
    ),
]


def _digest() -> str:
    chunks = []
    for kind, data in CORPUS:
        parsed = document_parse(kind, data, url="https://shop.example/page")
        chunks.append(
            [
                [draft.heading, draft.page, draft.content, draft.question]
                for draft in pages_chunk(parsed["pages"])
            ]
        )
    return hashlib.sha256(json.dumps(chunks, sort_keys=True).encode()).hexdigest()


def test_a_change_to_what_documents_are_cut_into_raises_the_parser_version():
    digest = _digest()
    assert PARSER_VERSION in DIGESTS, f"record PARSER_VERSION {PARSER_VERSION}'s digest: {digest}"
    assert digest == DIGESTS[PARSER_VERSION], (
        "Parsing or chunking now cuts the same documents differently: raise "
        "knowledge.chunking.PARSER_VERSION (so knowledge_reparse and re-syncs cut stored knowledge "
        f"again), say what changed in its comment, and add {PARSER_VERSION + 1}: {digest!r} here."
    )
