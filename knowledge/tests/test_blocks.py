"""Block boundaries survive extraction and chunking: a heading, a list item or a table row is
never glued to the sentence after it ("Returns and refunds You can return…")."""

from knowledge.chunking import text_chunk
from knowledge.parsing import docx_parse, html_parse, pdf_parse, plain_parse
from testkit.documents import docx_make, pdf_make


def _lines(text: str) -> list[str]:
    return "\n".join(chunk.content for chunk in text_chunk(text)).split("\n")


def test_html_blocks_stay_apart_headings_list_items_and_table_rows():
    page = (
        b"<html><body><main><div class='title'>Returns and refunds</div>"
        b"<div>You can return items within 30 days.</div>"
        b"<ul><li>Free returns</li><li>Label included</li></ul>"
        b"<table><tr><th>Plan</th><th>Price</th></tr><tr><td>Pro</td><td>49 EUR</td></tr></table>"
        b"<h2>Shipping</h2><p>We ship worldwide.</p></main></body></html>"
    )
    text = html_parse(page)["pages"][0]["text"]
    [chunk] = text_chunk(text)
    assert chunk.content.split("\n") == [
        "Returns and refunds",
        "You can return items within 30 days.",
        "- Free returns",
        "- Label included",
        "Plan: Pro; Price: 49 EUR.",
        "Shipping",
        "We ship worldwide.",
    ]


def test_html_list_items_keep_their_marker_and_rows_under_a_header_name_their_columns():
    """Found walking the demo shop with a help page: list items came out as bare short lines,
    which the answerer took for headings ("PayPal"), and a shipping table's rows as "Canada |
    5-8 business days, $12 | 2-4 business days, $29": quoted alone, nobody could tell standard
    from express, and "how much is express shipping" found "express" in no row."""
    page = (
        b"<main><p>We accept:</p><ul><li>PayPal</li><li> </li><li>Apple <b>Pay</b></li></ul>"
        b"<ol start='2'><li>Print the label.</li><li>Drop the parcel.</li></ol>"
        b"<table><thead><tr><th>Destination</th><th>Standard</th><th>Express</th></tr></thead>"
        b"<tbody><tr><td>Canada</td><td>5-8 days, $12</td><td>2-4 days, $29</td></tr>"
        b"<tr><td>Mexico</td><td></td><td>3 days.</td></tr>"
        b"<tr><td colspan='3'>Prices include tax</td></tr></tbody></table>"
        b"<table><tr><td>No</td><td>header</td></tr></table></main>"
    )
    [chunk] = text_chunk(html_parse(page)["pages"][0]["text"])
    assert chunk.content.split("\n") == [
        "We accept:",
        "- PayPal",
        "- Apple Pay",
        "2. Print the label.",
        "3. Drop the parcel.",
        "Destination: Canada; Standard: 5-8 days, $12; Express: 2-4 days, $29.",
        "Destination: Mexico; Express: 3 days.",
        "Prices include tax",
        "No | header",
    ]


def test_html_text_after_a_block_and_between_inline_elements_is_not_glued():
    """Found on a walk with a crawled help site: a block's end is a boundary too ("…after we
    receive the return.Back" came from a "Back" link after the last paragraph), whitespace
    between inline elements is a space, and a heading with a link inside is read once."""
    page = (
        b"<html><body><h2><a href='/returns'>Returns</a> policy</h2>"
        b"<p>Refunds are issued within 5 business days.</p>\n<a href='/'>Back</a>"
        b"<div>Call us<p>Mon-Fri 9-5</p>or write to us</div>"
        b"<p><b>Free</b> <i>shipping</i> over $75</p></body></html>"
    )
    [chunk] = text_chunk(html_parse(page)["pages"][0]["text"])
    assert chunk.content.split("\n") == [
        "Returns policy",
        "Refunds are issued within 5 business days.",
        "Back",
        "Call us",
        "Mon-Fri 9-5",
        "or write to us",
        "Free shipping over $75",
    ]


def test_pdf_soft_wrapped_lines_join_but_headings_and_list_items_stand_alone():
    page = (
        "Returns and refunds\n"
        "You can return any item within 30 days of delivery for a full refund, no questions asked, "
        "as long as it is unused.\n"
        "Refunds reach your card in 5 days.\n"
        "Shipping\n"
        "- Standard: 3-5 days\n"
        "- Express: next day"
    )
    text = pdf_parse(pdf_make([page]), max_pages=5)["pages"][0]["text"]
    assert _lines(text) == [
        "Returns and refunds",
        # printed on two lines (the PDF wraps at 90 characters), read as one sentence
        "You can return any item within 30 days of delivery for a full refund, no questions asked, "
        "as long as it is unused.",
        "Refunds reach your card in 5 days.",
        "Shipping",
        "- Standard: 3-5 days",
        "- Express: next day",
    ]


def test_docx_paragraphs_and_table_rows_stay_apart():
    data = docx_make([("Returns", "You can return items.\n\nRefunds take 5 days.")])
    [chunk] = text_chunk(docx_parse(data)["pages"][0]["text"])
    assert chunk.heading == "Returns"
    assert chunk.content.split("\n") == [
        "Returns",
        "You can return items.",
        "Refunds take 5 days.",
        "Plan | Price",
        "Pro | 49 EUR",
    ]


def test_markdown_list_items_and_table_rows_without_blank_lines_stay_apart():
    [chunk] = text_chunk(
        "# Shipping\nOptions:\n- Standard 3 days\n- Express 1 day\n| Plan | Price |\n| Pro | 49 |"
    )
    assert chunk.content.split("\n") == [
        "Shipping",
        "Options:",
        "- Standard 3 days",
        "- Express 1 day",
        "| Plan | Price |",
        "| Pro | 49 |",
    ]


def test_a_heading_inside_a_chunk_starts_its_own_line():
    [chunk] = text_chunk("# A\nShort.\n# B\nAlso short.")
    assert chunk.content == "A\nShort.\nB\nAlso short."


def test_a_markdown_table_reads_as_rows_that_name_their_columns():
    """As an HTML table under a header: a Markdown file's pipe table was kept as it was written,
    and an answer quoting a row showed "| Canada | 5-8 days, $12 | 2-4 days, $29 |"."""
    text = plain_parse(
        b"# Shipping\nRates:\n| Destination | Standard | Express |\n|---|:---:|---:|\n"
        b"| Canada | 5-8 days, $12 | 2-4 days, $29 |\n| Mexico |  | 3 days |\nAfter the table.\n\n"
        b"Not a table | no rule under it\n",
        markdown=True,
    )["pages"][0]["text"]
    [chunk] = text_chunk(text)
    assert chunk.content.split("\n") == [
        "Shipping",
        "Rates:",
        "Destination: Canada; Standard: 5-8 days, $12; Express: 2-4 days, $29.",
        "Destination: Mexico; Express: 3 days.",
        "After the table.",
        "Not a table | no rule under it",
    ]
