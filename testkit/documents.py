"""Building real test documents: PDFs with text on numbered pages, DOCX, hostile PDFs."""

from __future__ import annotations

import io
import zlib


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


PdfLine = str | tuple  # see pdf_make


def pdf_make(pages: list[str | list[PdfLine]], *, title: str = "") -> bytes:
    """A valid PDF whose page N shows the lines of pages[N-1] (Helvetica, extractable text).

    A page is a string (its lines in 11 pt Helvetica, each cut every 90 characters) or a list of
    lines: a string is such an 11 pt line; `(text, size)` or `(text, size, bold)` sets the font
    size in points and Helvetica-Bold, cut at as many characters as fit the same width; `text`
    may be a list of cells, placed side by side on one baseline (a table row)."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below
    pages_id = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    bold_font = None
    page_ids = []
    for page in pages:
        lines = []
        y = 760
        uses_bold = False
        for item in page.split("\n") if isinstance(page, str) else page:
            text, size, bold = (item, 11, False) if isinstance(item, str) else (*item, False)[:3]
            name = "F2" if bold else "F1"
            uses_bold = uses_bold or bool(bold)
            if isinstance(text, list):  # cells of a table row, each a text object of its own
                for column, cell in enumerate(text):
                    x = 50 + 150 * column
                    lines.append(f"BT /{name} {size:g} Tf {x} {y} Td ({_escape(cell)}) Tj ET")
                y -= max(14, round(size * 1.3))
                continue
            width = 90 if size == 11 else max(10, int(90 * 11 / size))
            for line in text.split("\n"):
                while line:
                    piece, line = line[:width], line[width:]
                    lines.append(f"BT /{name} {size:g} Tf 50 {y} Td ({_escape(piece)}) Tj ET")
                    y -= max(14, round(size * 1.3))
        if uses_bold and bold_font is None:
            bold_font = add(
                b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
            )
        fonts = b"/F1 %d 0 R" % font + (b" /F2 %d 0 R" % bold_font if uses_bold else b"")
        stream = zlib.compress("\n".join(lines).encode("latin-1", "replace"))
        content = add(
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream"
        )
        page_ids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                b"/Resources << /Font << %s >> >> >>" % (pages_id, content, fonts)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id
    kids = b" ".join(b"%d 0 R" % page_id for page_id in page_ids)
    objects[pages_id - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_ids))
    info = add(b"<< /Title (%s) >>" % _escape(title).encode("latin-1")) if title else None

    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    trailer = b"<< /Size %d /Root %d 0 R" % (len(objects) + 1, catalog)
    if info:
        trailer += b" /Info %d 0 R" % info
    out.write(b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def pdf_encrypted(pages: list[str]) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_make(pages))))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_malformed() -> bytes:
    return b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\nthis is not a pdf body\n%%EOF"


def _pdf_assemble(objects: list[bytes]) -> bytes:
    """Objects numbered from 1; object 1 is the catalog."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n" % (len(objects) + 1, xref) + b"%%EOF\n")
    return out.getvalue()


def pdf_decompression_bomb(decompressed_mb: int = 900) -> bytes:
    """A one-page PDF whose content stream inflates to `decompressed_mb` MB of drawing operators."""
    compressor = zlib.compressobj(9)
    block = b"0 0 m 1 1 l S\n" * (1 << 16)
    parts = [compressor.compress(block) for _ in range(decompressed_mb * (1 << 20) // len(block))]
    parts.append(compressor.flush())
    stream = b"".join(parts)
    return _pdf_assemble(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        ]
    )


def pdf_cyclic_pages() -> bytes:
    """A page tree whose /Kids points back at itself."""
    return _pdf_assemble(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
            b"<< /Type /Pages /Kids [2 0 R] /Parent 2 0 R /Count 1 >>",
        ]
    )


def docx_make(sections: list[tuple[str, str]], *, title: str = "") -> bytes:
    import docx

    document = docx.Document()
    if title:
        document.core_properties.title = title
        document.add_heading(title, level=0)
    for heading, body in sections:
        document.add_heading(heading, level=1)
        for paragraph in body.split("\n\n"):
            document.add_paragraph(paragraph)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Plan", "Price"
    table.cell(1, 0).text, table.cell(1, 1).text = "Pro", "49 EUR"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def docx_zip_bomb() -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"<w:document>" + b" " * (20 * 1024 * 1024) + b"</w:document>")
    return out.getvalue()


def docx_with_body_xml(document_xml: bytes) -> bytes:
    """A real DOCX (docx_make's) whose word/document.xml is replaced by `document_xml`."""
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(docx_make([("Heading", "Body")])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for item in source.infolist():
            data = document_xml if item.filename == "word/document.xml" else source.read(item.filename)
            archive.writestr(item.filename, data)
    return out.getvalue()
