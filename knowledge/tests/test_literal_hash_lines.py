"""A body line that starts with "#" ("#1 best seller in lamps", "# of items: 3", a shell comment in
a manual) is text, not a heading: the parsers hand it to the chunker escaped, the chunker never
starts a section at it and the chunk shows it as written. The headings the parsers emit (HTML
<h1>-<h6>, Word's Heading styles, a PDF's larger or bold lines, a Markdown file's "#" lines) are
headings as before."""

import io

import docx
import pytest

from knowledge.chunking import text_chunk
from knowledge.crawler import page_kind
from knowledge.models import Chunk
from knowledge.parsing import body_escape, document_parse, docx_parse, html_parse, pdf_parse
from knowledge.services.sources import file_kind_parsed
from testkit.documents import pdf_make

LITERAL = ["#1 best seller in lamps", "# of items: 3", "# apt-get install lumen ##"]


def _chunks(text: str, **kwargs) -> list[tuple[str, list[str]]]:
    return [(chunk.heading, chunk.content.split("\n")) for chunk in text_chunk(text, **kwargs)]


def test_the_escape_is_reversible_and_only_touches_lines_that_start_with_a_hash():
    text = "# a\n  ## b\nc # d\n\\# e\n\\\\## f\r# g\n\x00 # h\n#"
    escaped = body_escape(text)
    assert escaped == "\\# a\n  \\## b\nc # d\n\\\\# e\n\\\\\\## f\r\\# g\n\x00 \\# h\n\\#"
    # The chunker reads every line as text and removes exactly the one backslash added.
    [(heading, lines)] = _chunks(escaped)
    assert heading == ""
    assert lines == [" ".join(["# a", "## b", "c # d", "\\# e", "\\\\## f", "# g", "# h", "#"])]


def test_plain_text_hash_lines_are_text_and_markdown_hash_lines_headings():
    data = b"Lamp catalogue\n\n#1 best seller in lamps\n\n# of items: 3\n\n  # apt-get install lumen ##\n"
    text = document_parse("text", data)["pages"][0]["text"]
    [(heading, lines)] = _chunks(text)
    assert heading == ""
    assert lines == ["Lamp catalogue", *LITERAL]
    assert "\\" not in "\n".join(lines)

    markdown = document_parse("markdown", b"# Catalogue\n\nThree lamps.\n\n## Care\n\nWipe them.\n")
    assert markdown["title"] == "Catalogue"
    assert [heading for heading, _lines in _chunks(markdown["pages"][0]["text"])] == ["Catalogue"]
    assert _chunks(markdown["pages"][0]["text"])[0][1] == ["Catalogue", "Three lamps.", "Care", "Wipe them."]
    # A plain text file's first line is its title as written.
    assert document_parse("text", b"# of items: 3\nLamps.")["title"] == "# of items: 3"


def test_pdf_body_lines_starting_with_a_hash_are_text_and_font_headings_stay_headings():
    # One size throughout: no headings at all, "#" lines included.
    plain = pdf_parse(pdf_make([["Lamp catalogue", *LITERAL]]), max_pages=5)["pages"][0]["text"]
    assert "\n#" not in "\n" + plain  # no line of it is a heading line
    [chunk] = text_chunk(plain, page=1)
    assert chunk.heading == ""
    # (short lines of one size are rejoined as one paragraph, as any PDF text is)
    assert chunk.content.replace("\n", " ") == " ".join(["Lamp catalogue", *LITERAL])

    # Headings read from the fonts are still headings; a "#" body line under one is not.
    page = [
        ("Aria desk lamp", 16, True),
        "#1 best seller in lamps: the Aria has a dimmable warm-white LED and a USB-C port.",
        ("Care", 16, True),
        "# of shades: 3",
        "Wipe the linen shade with a dry microfibre cloth.",
    ]
    result = pdf_parse(pdf_make([page]), max_pages=5)["pages"][0]
    assert result["text"].startswith("# Aria desk lamp\n\n\\#1 best seller")
    chunks = _chunks(result["text"], page=1, sections_apart=True)
    assert [heading for heading, _lines in chunks] == ["Aria desk lamp", "Care"]
    assert chunks[0][1] == [
        "Aria desk lamp",
        "#1 best seller in lamps: the Aria has a dimmable warm-white LED and a USB-C port.",
    ]
    assert chunks[1][1][0] == "Care"
    assert "# of shades: 3" in chunks[1][1]


def test_docx_hash_paragraphs_and_table_rows_are_text_and_heading_styles_stay_headings():
    document = docx.Document()
    document.add_heading("Lamp catalogue", level=0)
    document.add_heading("Aria", level=1)
    document.add_paragraph("#1 best seller in lamps")
    document.add_paragraph("# of items: 3")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "#", "Item"
    table.cell(1, 0).text, table.cell(1, 1).text = "1", "Aria"
    out = io.BytesIO()
    document.save(out)
    text = docx_parse(out.getvalue())["pages"][0]["text"]
    [(heading, lines)] = _chunks(text)
    assert heading == "Aria"
    assert lines == [
        "Lamp catalogue",
        "",
        "Aria",
        "#1 best seller in lamps",
        "# of items: 3",
        "# | Item",
        "1 | Aria",
    ]


def test_html_hash_paragraphs_are_text_and_h_elements_stay_headings():
    page = (
        b"<main><h1>Lamp catalogue</h1><p>#1 best seller in lamps</p><h2>Setup</h2>"
        b"<pre># apt-get install lumen</pre><table><tr><td># of items</td><td>3</td></tr></table></main>"
    )
    text = html_parse(page)["pages"][0]["text"]
    [(heading, lines)] = _chunks(text)
    assert heading == "Lamp catalogue"
    assert [heading for heading, _lines in _chunks(text, sections_apart=True)] == ["Lamp catalogue", "Setup"]
    assert lines == [
        "Lamp catalogue",
        "#1 best seller in lamps",
        "Setup",
        "# apt-get install lumen",
        "# of items | 3",
    ]


def test_crawled_markdown_pages_and_uploads_named_as_markdown_keep_their_headings():
    assert page_kind("text/markdown") == "markdown"
    assert page_kind("text/plain") == "text"

    class Stored:
        def __init__(self, file_type, file_name):
            self.file_type, self.file_name = file_type, file_name

    assert file_kind_parsed(Stored("text", "Guide.MD")) == "markdown"
    assert file_kind_parsed(Stored("text", "notes.txt")) == "text"
    assert file_kind_parsed(Stored("pdf", "x.md")) == "pdf"


@pytest.mark.django_db
def test_an_upload_without_a_type_is_markdown_by_its_name_and_text_otherwise(tenant):
    from knowledge import services
    from knowledge.tests.conftest import upload

    markdown = services.file_source_create(
        organization=tenant.organization,
        title="",
        file_type="",
        uploaded_file=upload("faq.md", b"# Shipping\n\nWe ship worldwide in 3 days.\n"),
    )
    text = services.file_source_create(
        organization=tenant.organization,
        title="",
        file_type="",
        uploaded_file=upload("stock.txt", b"# of lamps in stock: 12\n\nShips in 3 days.\n"),
    )
    assert (markdown.file_type, text.file_type) == ("markdown", "text")
    assert services.source_ingest(source_id=markdown.pk) == "ready"
    assert services.source_ingest(source_id=text.pk) == "ready"
    chunks = Chunk.objects.for_organization(tenant.organization)
    [shipping] = chunks.filter(document__source=markdown)
    assert (shipping.heading, shipping.content) == ("Shipping", "Shipping\nWe ship worldwide in 3 days.")
    [stock] = chunks.filter(document__source=text)
    assert (stock.heading, stock.content) == ("", "# of lamps in stock: 12\nShips in 3 days.")
