"""Turning untrusted bytes (PDF, DOCX, HTML, text) into text with headings and page numbers.

This module imports nothing from Django: it runs inside the parser sandbox, a child
process with memory, CPU and wall-clock limits (`knowledge.sandbox`), so a hostile file
(decompression bomb, endless loop, parser bug) costs that file only.

Every parser returns {"title": str, "pages": [{"page": int | None, "text": str}],
"canonical_url": str, "links": [str]}; headings in `text` are Markdown lines so the
chunker can keep sections together. A PDF page whose headings were read from its fonts also
has "sections_apart": True (each of its sections is chunked on its own: `text_chunk`).
Only the headings a parser emits are heading lines: a body line of a PDF, DOCX, HTML or plain
text file that itself starts with "#" ("#1 best seller", "# of items: 3", a shell comment) is
handed over escaped (`body_escape`).
"""

from __future__ import annotations

import io
import logging
import math
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 20_000_000
DOCX_MAX_UNCOMPRESSED = 200 * 1024 * 1024
DOCX_MAX_RATIO = 100
DEEP_TREE_DEPTH = 250


class ParseError(Exception):
    """The file cannot be read; `code` is a stable machine-readable reason, `message` a
    sentence for the operator (stored on the source, shown in the dashboard and the API),
    `detail` what the parser raised, for the logs only."""

    def __init__(self, code: str, message: str, *, detail: str = ""):
        self.code = code
        self.message = message
        self.detail = detail
        super().__init__(message)


def error_detail(error: BaseException) -> str:
    """What a parser raised, for the logs: its class and (a bounded) message."""
    text = str(error).strip()
    return f"{error.__class__.__name__}: {text[:300]}" if text else error.__class__.__name__


# A body line starting with "#" gets a backslash before its first "#" (after any leading
# whitespace, which the chunker strips), one that starts with backslashes and "#" one more
# backslash, so the escape is reversible: the chunker never reads the line as a heading and
# removes the one backslash (`chunking._ESCAPED_HASH`), and the reader sees the line as written.
# Lines break at "\n" and "\r", as the chunker's `text_normalise` breaks them.
_HASH_LINE = re.compile(r"(^|\r)((?:[^\S\r\n]|\x00)*)(\\*#)", re.M)


def body_escape(text: str) -> str:
    """`text` (body text, never a heading a parser emits) with each line that starts with "#"
    escaped, so the chunker reads it as text, not as a Markdown heading."""
    return _HASH_LINE.sub(r"\1\2\\\3", text)


# --- sniffing ---------------------------------------------------------------------------
BINARY_KINDS = {"pdf", "docx"}
TEXT_KINDS = {"text", "markdown", "html"}


def file_kind_sniff(head: bytes, *, zip_names: list[str] | None = None) -> str:
    """What the bytes really are: pdf, docx, zip (other), html, text or binary."""
    stripped = head.lstrip()
    if head[:1024].find(b"%PDF-") != -1:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        if zip_names is not None and "word/document.xml" in zip_names:
            return "docx"
        return "zip"
    sample = stripped[:4096]
    if b"\x00" in sample and not (sample.startswith(b"\xff\xfe") or sample.startswith(b"\xfe\xff")):
        return "binary"
    lowered = sample.lower()
    if lowered.startswith(b"\xef\xbb\xbf"):
        lowered = lowered[3:]
    if lowered.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or (
        lowered.startswith(b"<") and (b"<html" in lowered or b"<body" in lowered or b"<div" in lowered)
    ):
        return "html"
    if lowered.startswith((b"<?xml", b"<svg")):
        return "xml"
    try:
        text_decode(sample if len(sample) < 4096 else sample[:4000])
    except ParseError:
        return "binary"
    return "text"


def text_decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start >= len(data) - 4:  # a character cut by the sample's end
            return data[: error.start].decode("utf-8")
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise ParseError("not_text", "The file is not readable text.")
    return str(best)


# --- PDF --------------------------------------------------------------------------------
def pdf_parse(data: bytes, *, max_pages: int) -> dict:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError, PdfStreamError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                decrypted = reader.decrypt("")
            except Exception as error:  # pypdf raises NotImplementedError for unknown ciphers
                raise ParseError("encrypted", "The PDF is encrypted and cannot be read.") from error
            if not decrypted:
                raise ParseError("encrypted", "The PDF is password-protected.")
        page_total = len(reader.pages)
    except ParseError:
        raise
    except (PdfReadError, PdfStreamError, ValueError, KeyError, TypeError, AttributeError, OSError) as error:
        raise ParseError(
            "malformed", "The PDF is damaged or not a PDF file.", detail=error_detail(error)
        ) from error
    if page_total > max_pages:
        raise ParseError("page_limit", f"The PDF has {page_total} pages; the limit is {max_pages}.")
    if page_total == 0:
        raise ParseError("empty", "The PDF has no pages.")

    title = ""
    try:
        title = str((reader.metadata or {}).get("/Title") or "").strip()
    except Exception:  # broken metadata must not cost the text
        title = ""
    read: list[tuple[str, list[_LineStyle] | None]] = []
    total = 0
    failures = 0
    for page in reader.pages:
        try:
            text, styles = _pdf_page_read(page)
        except RecursionError as error:
            raise ParseError("malformed", "The PDF's structure is too deeply nested.") from error
        except Exception:
            failures += 1
            text, styles = "", None
        total += len(text)
        if total > MAX_TEXT_CHARS:
            raise ParseError("text_limit", "The PDF holds more text than the limit allows.")
        read.append((text, styles))
    headings = _pdf_headings(read)
    pages = []
    for number, ((text, styles), page_headings) in enumerate(zip(read, headings, strict=True), start=1):
        tables = _pdf_tables(text, styles, headings=page_headings)
        page = {"page": number, "text": _pdf_blocks(text, headings=page_headings, tables=tables)}
        if page_headings:
            page["sections_apart"] = True  # each heading's section a chunk (`text_chunk`)
        pages.append(page)
    if failures == page_total:
        raise ParseError("malformed", "No page of the PDF could be read.")
    if not any(item["text"].strip() for item in pages):
        raise ParseError("no_text", "The PDF contains no extractable text (scanned images need OCR).")
    return {"title": title[:500], "pages": pages, "canonical_url": "", "links": []}


_LIST_ITEM = re.compile(r"^(?:[-•*–▪◦·‣]|\(?\d{1,3}[.)]|\(?[a-zA-Z][.)])\s+\S")
_ENDS_SENTENCE = (".", "!", "?", ":", ";", "…", '."', ".)")


def _pdf_blocks(
    text: str, *, headings: dict[int, str] | None = None, tables: dict[int, str] | None = None
) -> str:
    """A page's printed lines as paragraphs: soft-wrapped lines stay one paragraph, and a
    blank line goes wherever a block ends, so a heading, a list item or a table row is never
    glued to the sentence after it.

    PDF text carries no paragraph marks, only lines. A line that stops well short of the
    page's usual line length ended its block (a heading, a paragraph's last line, a cell); a
    list item starts one; so does a short line without end punctuation after a sentence (a
    heading that follows a full-width last line).

    `headings` ({line index: Markdown heading line, or "" for the second line of a heading
    printed on two}, from `_pdf_headings`) puts those lines as a block of their own in
    Markdown, so the chunker starts a section at each.

    `tables` ({line index: the row as one line, or "" for a header row}, from `_pdf_tables`) puts
    each row of a table under a header as a paragraph of its own that names its columns.
    """
    headings = headings or {}
    tables = tables or {}
    lines = [" ".join(line.split()) for line in text.split("\n")]
    lengths = sorted(len(line) for line in lines if len(line.split()) >= 3)
    if not lengths:
        return "\n\n".join(
            item
            for index, line in enumerate(lines)
            if (
                item := headings[index]
                if index in headings
                else body_escape(tables[index])
                if index in tables
                else body_escape(line)
            )
        )
    usual = lengths[min(len(lengths) - 1, int(len(lengths) * 0.8))]

    def short(line: str) -> bool:
        return len(line) < 0.75 * usual

    out: list[str] = []
    previous = ""
    for index, line in enumerate(lines):
        if index in headings or index in tables:
            item = headings[index] if index in headings else body_escape(tables[index])
            if item:
                if out and out[-1]:
                    out.append("")
                out += [item, ""]
            previous = ""
            continue
        if not line:
            if out and out[-1]:
                out.append("")
            previous = ""
            continue
        if previous and (
            short(previous)
            or _LIST_ITEM.match(line)
            or (previous.endswith(_ENDS_SENTENCE) and short(line) and not line.endswith(_ENDS_SENTENCE))
        ):
            out.append("")
        out.append(body_escape(line))
        previous = line
    return "\n".join(out).strip()


# --- PDF headings -----------------------------------------------------------------------
# A PDF has no heading marks, only text set in fonts. pypdf's text visitor reports each printed
# run with its font and size; a line set larger than the document's body text, or in a bold
# face at body size standing alone, is a heading (the rules: `_pdf_headings`).
# What pypdf looks for before it reads a page (Tj, TJ, Do, ', "), found as it finds them: a
# character class first, which runs through megabytes of drawing operators far faster.
_TEXT_OPERATORS = (b"Tj", b"TJ", b"Do")
_TEXT_OPERATOR_START = re.compile(rb"[TD'\"]")
_BOLD_NAME = re.compile(r"bold|black|heavy|demi", re.I)  # Arial-BoldMT, Inter-SemiBold, …
_FORCE_BOLD = 1 << 18  # font descriptor flag 19
MAX_STYLED_RUNS = 20_000  # per page; a page printed glyph by glyph is read without headings
HEADING_SIZE_RATIO = 1.15
HEADING_MAX_CHARS = 120
HEADING_MAX_WORDS = 15
HEADING_MAX_LINES = 3
_NOT_HEADING_END = (".", ",", ";", "…")
_BULLET = re.compile(r"^[-•*–▪◦·‣]\s")
_PAGE_NUMBER = re.compile(r"^(?:page|p\.|seite|página|pagina)?\s*\d+(?:\s*(?:of|/|von|de|sur)\s*\d+)?$", re.I)


@dataclass
class _LineStyle:
    """What one printed line of a page was set in: characters per (size, bold), and where
    each run of it starts (x, size, characters) to tell table cells apart."""

    counts: Counter = field(default_factory=Counter)
    starts: list[tuple[float, float, int]] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)  # where each run of `starts` begins in the line

    def style(self) -> tuple[float, bool] | None:
        """The line's size and weight when (nearly) all of it is set in one."""
        total = sum(self.counts.values())
        if not total:
            return None
        style, count = self.counts.most_common(1)[0]
        return style if count >= 0.9 * total else None

    def cells(self) -> bool:
        """Runs on one baseline far apart (columns of a table, tab stops): not one heading."""
        for (x, size, chars), (next_x, _size, _chars) in zip(self.starts, self.starts[1:], strict=False):
            if next_x - x > chars * 0.6 * size + 1.5 * size:
                return True
        return False

    def cell_texts(self, line: str) -> list[str]:
        """The line cut where each of its runs begins (a table row's cells, when each cell is a
        run); [] when it is one run, or a cut leaves a cell without text."""
        if len(self.offsets) < 2 or len(self.offsets) != len(self.starts):
            return []
        bounds = [0, *self.offsets[1:], len(line)]
        cells = [" ".join(line[start:end].split()) for start, end in zip(bounds, bounds[1:], strict=False)]
        return cells if all(cells) else []

    def columns(self) -> tuple[float, ...]:
        return tuple(x for x, _size, _chars in self.starts)


class _PageRuns:
    """pypdf's `visitor_text` callback for one page: the text it reports, in order, with each
    run's size (the font size through the text and page matrices, to half a point) and weight.
    It never raises (a surprise in a font dictionary costs the page its headings, not its text)."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.runs: list[tuple[int, int, float, bool, float]] = []  # start, end, size, bold, x
        self.length = 0
        self.broken = False
        # id(font) -> (font, bold): the font is kept so its id cannot be reused by another.
        self._bold: dict[int, tuple[object, bool]] = {}

    def visit(self, text, cm, tm, font, size) -> None:
        if self.broken or not text:
            return
        try:
            start = self.length
            self.pieces.append(text)
            self.length += len(text)
            if not text.strip():
                return
            if len(self.runs) >= MAX_STYLED_RUNS:
                self.broken = True
                return
            _a, _b, c, d, e, f = (float(value) for value in tm)
            ca, cb, cc, cd, ce, _cf = (float(value) for value in cm)
            scale = math.hypot(c * ca + d * cc, c * cb + d * cd)
            x = e * ca + f * cc + ce
            effective = round(float(size) * scale * 2) / 2
            if not math.isfinite(effective) or not math.isfinite(x):
                raise ValueError("size")
            self.runs.append((start, self.length, effective, self._is_bold(font), x))
        except Exception:
            self.broken = True

    def _is_bold(self, font) -> bool:
        if font is None:
            return False
        key = id(font)
        if key not in self._bold:
            self._bold[key] = (font, _font_bold(font))
        return self._bold[key][1]

    def lines(self, text: str) -> list[_LineStyle] | None:
        """Per line of `text` (split at "\\n"), what it was set in; None when the visitor's
        runs do not spell the page's text exactly."""
        if self.broken or "".join(self.pieces) != text:
            return None
        styles = [_LineStyle() for _ in range(text.count("\n") + 1)]
        line_starts = [0, *(index + 1 for index, character in enumerate(text) if character == "\n")]
        line = 0
        position = 0
        for start, end, size, bold, x in self.runs:
            line += text.count("\n", position, start)
            first = True
            for part in text[start:end].split("\n"):
                chars = len("".join(part.split()))  # its printed characters
                if chars:
                    styles[line].counts[(size, bold)] += chars
                    if first:
                        styles[line].starts.append((x, size, len(part)))
                        styles[line].offsets.append(start - line_starts[line])
                first = False
                line += 1
            line -= 1
            position = end
        return styles


def _font_bold(font) -> bool:
    """Whether a font dictionary names a bold face (its name, weight or ForceBold flag)."""
    try:
        if _BOLD_NAME.search(str(font.get("/BaseFont", ""))):
            return True
        descriptor = font.get("/FontDescriptor")
        if descriptor is None and font.get("/DescendantFonts"):
            descriptor = font["/DescendantFonts"][0].get_object().get("/FontDescriptor")
        if descriptor is None:
            return False
        descriptor = descriptor.get_object()
        weight = descriptor.get("/FontWeight")
        if weight is not None and float(weight) >= 600:
            return True
        return bool(int(descriptor.get("/Flags", 0)) & _FORCE_BOLD)
    except Exception:
        return False


def _pdf_page_read(page) -> tuple[str, list[_LineStyle] | None]:
    """A page's text, exactly as `page.extract_text()` gives it, and what each line was set in.

    With a visitor pypdf parses a page's content even when it holds no text operator (a page
    of drawing operators, a decompression bomb); without one it skips such a page, and a page
    without fonts or forms before it even inflates the content. So a page is read with the
    visitor only when it has fonts or forms and its content a text operator: the text is then
    the same, and a page of drawings costs what it cost before."""
    try:
        resources = page.get_inherited("/Resources", None)
        resources = resources.get_object() if resources is not None else None
        has_text = False
        if hasattr(resources, "get") and (resources.get("/Font") or resources.get("/XObject")):
            contents = page.get_contents()
            has_text = contents is not None and _has_text_operator(contents.get_data())
    except RecursionError:
        raise
    except Exception:
        has_text = False
    if not has_text:
        return page.extract_text() or "", None
    runs = _PageRuns()
    text = page.extract_text(visitor_text=runs.visit) or ""
    return text, runs.lines(text)


def _has_text_operator(data: bytes) -> bool:
    for match in _TEXT_OPERATOR_START.finditer(data):
        if match[0] in (b"'", b'"') or data[match.start() : match.start() + 2] in _TEXT_OPERATORS:
            return True
    return False


def _edge_key(line: str) -> str:
    return " ".join(line.split()).lower()


def _running_lines(read: list[tuple[str, list[_LineStyle] | None]]) -> set[str]:
    """Page headers and footers: a line among a page's first or last two that recurs so, word
    for word, on more than one page. (Numbered headings that open each page, "1. Setup",
    "2. Care", differ; a page number, "Page 2 of 9", is never a heading: `_PAGE_NUMBER`.)"""
    if len(read) < 2:
        return set()
    seen: Counter = Counter()
    for text, _styles in read:
        lines = [line for line in text.split("\n") if line.strip()]
        seen.update({_edge_key(line) for line in lines[:2] + lines[-2:]})
    return {key for key, count in seen.items() if count >= 2}


def _heading_text(line: str) -> bool:
    text = " ".join(line.split())
    return (
        0 < len(text) <= HEADING_MAX_CHARS
        and len(text.split()) <= HEADING_MAX_WORDS
        and any(character.isalpha() for character in text)
        and not text.endswith(_NOT_HEADING_END)
        and not _BULLET.match(text)
    )


def _table_like(line: str, style: _LineStyle | None) -> bool:
    """A table row: cells far apart on the line, or mostly figures ("M 38-40 32-34")."""
    words = line.split()
    figures = sum(1 for word in words if any(character.isdigit() for character in word))
    return bool(style and style.cells()) or (len(words) >= 2 and figures * 2 >= len(words))


def _pdf_headings(read: list[tuple[str, list[_LineStyle] | None]]) -> list[dict[int, str]]:
    """Per page, {line index: "## Heading"} (and "" for a heading's second printed line).

    The body style is the (size, weight) most of the document's characters are set in. A
    heading is a run of one to three lines (a heading may wrap) set alike, with letters, at most
    120 characters and 15 words, not ending like a sentence or a clause (".", ",", ";"), not a
    bullet item, not a table row, not a running header or footer, and either
    - set at least 15 % larger than the body text (levels by size, the largest "#"), or
    - one line in a bold face at body size (body text not bold) standing alone: the lines
      around it are set otherwise, and the next is no table row (a bold table header) — one
      level below the sized headings.
    A document set in one size and weight gets no headings: its text is what it was."""
    body: Counter = Counter()
    for _text, styles in read:
        for style in styles or []:
            body.update(style.counts)
    if not body:
        return [{} for _ in read]
    (body_size, body_bold), _count = body.most_common(1)[0]
    running = _running_lines(read)
    found: list[list[tuple[int, list[int], float | None, str]]] = []
    for text, styles in read:
        lines = text.split("\n")
        page: list[tuple[int, list[int], float | None, str]] = []
        found.append(page)
        if not styles:
            continue
        kinds = [style.style() for style in styles]
        index = 0
        while index < len(lines):
            kind = kinds[index]
            if kind is None or not lines[index].strip():
                index += 1
                continue
            group = [index]
            while (
                group[-1] + 1 < len(lines) and kinds[group[-1] + 1] == kind and lines[group[-1] + 1].strip()
            ):
                group.append(group[-1] + 1)
            index = group[-1] + 1
            size, bold = kind
            heading = " ".join(" ".join(lines[position].split()) for position in group)
            if (
                len(group) > HEADING_MAX_LINES
                or not _heading_text(heading)
                or any(_edge_key(lines[position]) in running for position in group)
                or _PAGE_NUMBER.match(heading)
                or any(styles[position].cells() for position in group)
            ):
                continue
            if size >= body_size * HEADING_SIZE_RATIO:
                page.append((group[0], group, size, heading))
            elif (
                bold
                and not body_bold
                and size >= body_size - 0.5
                and len(group) == 1
                and not _LIST_ITEM.match(heading)
                and not _table_like(heading, None)
                and not (index < len(lines) and _table_like(lines[index], styles[index]))
            ):
                page.append((group[0], group, None, heading))
    sizes = sorted({size for page in found for _first, _group, size, _text in page if size}, reverse=True)
    levels = {size: level for level, size in enumerate(sizes, start=1)}
    result = []
    for page in found:
        marks: dict[int, str] = {}
        for first, group, size, heading in page:
            level = min(6, levels[size] if size else len(sizes) + 1)
            marks[first] = "#" * level + " " + heading
            marks.update(dict.fromkeys(group[1:], ""))
        result.append(marks)
    return result


# --- PDF tables -------------------------------------------------------------------------
# pypdf gives a table row as one line, its cells joined by spaces: "Canada 7-10 business days,
# $14 3-4 business days, $32" does not say which price is standard and which express. When each
# cell is a run of its own (as Chromium, LibreOffice and most report tools print a table), the
# runs' positions give the cells back.
TABLE_HEADER_MAX_WORDS = 4
TABLE_COLUMN_TOLERANCE = 2.0  # points


def _table_header(cells: list[str], columns: int) -> bool:
    """Cells that name columns: as many as the rows have, each a few words and no figure."""
    return len(cells) == columns and all(
        len(cell.split()) <= TABLE_HEADER_MAX_WORDS and not any(character.isdigit() for character in cell)
        for cell in cells
    )


def _running_text(rows: list[list[str]]) -> bool:
    """Columns of prose, not cells: a cell of three words or more that does not end a sentence
    and goes on in the cell under it ("You can return any item" over "within 30 days")."""
    for row, below in zip(rows, rows[1:], strict=False):
        for cell, next_cell in zip(row, below, strict=False):
            if len(cell.split()) >= 3 and not cell.endswith(_ENDS_SENTENCE) and next_cell[:1].islower():
                return True
    return False


def _aligned(first: _LineStyle, other: _LineStyle) -> bool:
    a, b = first.columns(), other.columns()
    return len(a) == len(b) and all(abs(x - y) <= TABLE_COLUMN_TOLERANCE for x, y in zip(a, b, strict=True))


def _pdf_tables(text: str, styles: list[_LineStyle] | None, *, headings: dict[int, str]) -> dict[int, str]:
    """A page's tables under a header: {line index: the row as a sentence naming its columns
    ("Destination: Canada; Standard: 7-10 business days, $14; Express: 3-4 business days, $32."),
    or "" for the header row, dropped}, as an HTML table under a header row reads.

    A table is two or more consecutive lines whose runs start at the same places (within 2
    points), two or more runs each, half of them or more with a figure, no cell running on into
    the one under it (`_running_text`), under a header: the line just above with as many runs, or
    the first of the lines when they are three or more, whose cells are at most four words
    without a figure. Anything else (a table without a header, one row, two columns of prose, a
    line printed word by word, a heading) is left as pypdf reads it.
    Never raises: a surprise costs the page its tables, not its text."""
    if not styles:
        return {}
    try:
        lines = text.split("\n")
        found: dict[int, str] = {}
        index = 0
        while index < len(lines):
            cells = styles[index].cell_texts(lines[index])
            if len(cells) < 2 or index in headings:
                index += 1
                continue
            group = [index]
            while (
                group[-1] + 1 < len(lines)
                and group[-1] + 1 not in headings
                and _aligned(styles[index], styles[group[-1] + 1])
                and len(styles[group[-1] + 1].cell_texts(lines[group[-1] + 1])) == len(cells)
            ):
                group.append(group[-1] + 1)
            index = group[-1] + 1
            above = group[0] - 1
            if (
                above >= 0
                and above not in headings
                and above not in found
                and _table_header(styles[above].cell_texts(lines[above]), len(cells))
            ):
                header_at = above
            elif len(group) >= 3 and _table_header(cells, len(cells)):
                header_at = group.pop(0)
            else:
                continue
            rows = [styles[position].cell_texts(lines[position]) for position in group]
            with_figures = sum(any(character.isdigit() for character in " ".join(row)) for row in rows)
            if len(rows) < 2 or with_figures * 2 < len(rows) or _running_text(rows):
                continue
            header = styles[header_at].cell_texts(lines[header_at])
            found[header_at] = ""
            for position, row in zip(group, rows, strict=True):
                found[position] = _row_line(header, row)
        return found
    except Exception:
        return {}


# --- DOCX -------------------------------------------------------------------------------
def docx_parse(data: bytes) -> dict:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except zipfile.BadZipFile as error:
        raise ParseError("malformed", "The DOCX file is damaged.") from error
    uncompressed = sum(member.file_size for member in members)
    compressed = sum(member.compress_size for member in members) or 1
    if (
        uncompressed > DOCX_MAX_UNCOMPRESSED
        or uncompressed / compressed > DOCX_MAX_RATIO
        and uncompressed > 10_000_000
    ):
        raise ParseError("decompression_bomb", "The DOCX file expands to more than the limit allows.")
    if "word/document.xml" not in {member.filename for member in members}:
        raise ParseError("malformed", "The file is a ZIP archive, not a Word document.")

    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as error:
        raise ParseError(
            "malformed", "The DOCX file is damaged or not a Word document.", detail=error_detail(error)
        ) from error
    lines: list[str] = []
    for block in document.element.body.iterchildren():
        tag = block.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(block, document)
            text = paragraph.text.strip()
            if not text:
                lines.append("")
                continue
            style = (paragraph.style.name if paragraph.style is not None else "") or ""
            match = re.match(r"Heading (\d)", style)
            if match:
                lines.append("")
                lines.append("#" * min(6, int(match.group(1))) + " " + text)
            elif style == "Title":
                lines.append("# " + text)
            else:
                lines.append(body_escape(text))
        elif tag == "tbl":
            table = Table(block, document)
            lines.append("")
            for row in table.rows:
                lines.append(body_escape(" | ".join(cell.text.strip() for cell in row.cells)))
    # One paragraph per Word paragraph (and per table row): never glued to the next one.
    text = "\n\n".join(line for line in lines if line)
    title = (document.core_properties.title or "").strip()
    return {"title": title[:500], "pages": [{"page": None, "text": text}], "canonical_url": "", "links": []}


# --- HTML -------------------------------------------------------------------------------
_BOILERPLATE_TAGS = [
    "script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "embed",
    "nav", "footer", "aside", "form", "button", "select", "input", "textarea", "dialog", "head",
]  # fmt: skip
_BOILERPLATE_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alert"}
_BOILERPLATE_WORDS = re.compile(
    r"(^|[\s_-])(cookie|cookies|consent|gdpr|cc-banner|newsletter|popup|modal|breadcrumbs?|sidebar|"
    r"skip-link|share|social|advert|ads|promo|subscribe)([\s_-]|$)",
    re.I,
)
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0|opacity\s*:\s*0(?![.\d])", re.I
)
_BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "li", "ul", "ol", "table", "tr", "blockquote", "pre",
    "dd", "dt", "dl", "figure", "figcaption", "br", "hr", "td", "th", "header", "address", "details", "summary",
}  # fmt: skip


def _max_depth(data: bytes) -> int:
    depth = deepest = 0
    for match in re.finditer(rb"<(/?)([a-zA-Z][a-zA-Z0-9]*)[^>]*?(/?)>", data[:5_000_000]):
        closing, _name, self_closing = match.groups()
        if closing:
            depth = max(0, depth - 1)
        elif not self_closing:
            depth += 1
            deepest = max(deepest, depth)
            if deepest > DEEP_TREE_DEPTH:
                return deepest
    return deepest


def _table_rows_flatten(table) -> None:
    """Each row of `table` as one line. Under a header row (its cells all `<th>`) a row reads as
    a sentence that names every column ("Destination: Canada; Standard: 5-8 business days, $12;
    Express: 2-4 business days, $29."), and the header row goes: a visitor quoted one row of
    "Canada | 5-8 business days, $12 | 2-4 business days, $29" could not tell standard from
    express, and a question about express shipping found no "express" in any row. Without a
    header, cells are joined as "Plan | Price"."""
    rows = [row for row in table.find_all("tr") if row.find_parent("table") is table]
    header: list[str] = []
    for position, row in enumerate(rows):
        cells = row.find_all(["td", "th"], recursive=False) or row.find_all(["td", "th"])
        texts = [" ".join(cell.get_text(" ").split()) for cell in cells]
        row.clear()
        if position == 0 and cells and all(cell.name == "th" for cell in cells) and len(cells) > 1:
            header = texts
            continue
        row.append(_row_line(header, texts))


def _row_line(header: list[str], cells: list[str]) -> str:
    """A table row as one line: a sentence naming each cell's column under a header of as many
    cells, else the cells joined by " | "; "" for a row without text."""
    if header and len(cells) == len(header):
        named = [
            f"{name}: {text}" if name else text for name, text in zip(header, cells, strict=True) if text
        ]
        line = "; ".join(named)
        return line if not line or line.endswith(_ENDS_SENTENCE) else f"{line}."
    return " | ".join(text for text in cells if text)


_MARKDOWN_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")


def _markdown_cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [" ".join(cell.split()) for cell in re.split(r"(?<!\\)\|", line)]


def _markdown_tables(text: str) -> str:
    """Markdown pipe tables (a header line, a `|---|---|` rule, rows) as HTML tables under a
    header are read: each row a sentence naming its columns, a paragraph of its own, the header
    and the rule dropped. Quoted, "| Canada | 5-8 days | $12 |" was table debris and did not say
    which column was which."""
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if (
            "|" in line
            and index + 1 < len(lines)
            and "|" in lines[index + 1]
            and _MARKDOWN_TABLE_RULE.match(lines[index + 1])
        ):
            header = _markdown_cells(line)
            index += 2
            rows = []
            while index < len(lines) and "|" in lines[index] and lines[index].strip():
                rows.append(_row_line(header, _markdown_cells(lines[index])))
                index += 1
            out += ["", "\n\n".join(row for row in rows if row), ""]
            continue
        out.append(line)
        index += 1
    return "\n".join(out)


def _list_items_mark(root) -> None:
    """A list item's line starts with its marker ("- " or "2. "), as in Markdown and PDF text: it
    is never read as a heading (a short line without end punctuation), and an answer quoting
    it can show the list it belongs to."""
    for item in root.find_all("li"):
        if not item.get_text(" ").strip():
            continue
        parent = item.find_parent(["ul", "ol"])
        if parent is not None and parent.name == "ol":
            try:
                start = int(parent.get("start", 1))
            except (TypeError, ValueError):
                start = 1
            siblings = parent.find_all("li", recursive=False)
            number = start + next((index for index, node in enumerate(siblings) if node is item), 0)
            item.insert(0, f"{number}. ")
        else:
            item.insert(0, "- ")


def html_parse(data: bytes, *, url: str = "") -> dict:
    from bs4 import BeautifulSoup, Comment, Declaration, Doctype, ProcessingInstruction

    # lxml (libxml2) silently drops content nested deeper than 256 elements; such pages are
    # parsed with Python's html.parser instead, which has no depth limit.
    parser = "lxml"
    if _max_depth(data) > DEEP_TREE_DEPTH:
        logger.info("deeply nested HTML: using html.parser so no content is dropped")
        parser = "html.parser"
    try:
        soup = BeautifulSoup(data, parser)
    except RecursionError as error:
        raise ParseError("malformed", "The HTML is nested too deeply to read.") from error

    title = ""
    og_title = soup.find("meta", attrs={"property": "og:title"})
    if soup.title and soup.title.string:
        title = soup.title.string.strip()
    elif og_title and og_title.get("content"):
        title = str(og_title["content"]).strip()

    canonical_url = ""
    canonical = soup.find("link", rel=lambda value: value and "canonical" in value)
    if canonical and canonical.get("href"):
        canonical_url = urldefrag(urljoin(url, str(canonical["href"]).strip()))[0]

    links = []
    robots_meta = soup.find("meta", attrs={"name": re.compile("^robots$", re.I)})
    follow = not (robots_meta and "nofollow" in str(robots_meta.get("content", "")).lower())
    if follow:
        for anchor in soup.find_all("a", href=True):
            if "nofollow" in (anchor.get("rel") or []):
                continue
            href = str(anchor["href"]).strip()
            if href and not href.startswith(("#", "mailto:", "tel:", "javascript:")):
                links.append(urldefrag(urljoin(url, href))[0])

    for comment in soup.find_all(string=lambda node: isinstance(node, Comment)):
        comment.extract()
    for element in soup.find_all(_BOILERPLATE_TAGS):
        element.decompose()
    for element in soup.find_all(True):
        if element.__dict__.get("_decomposed"):  # (the .decomposed property searches the tree)
            continue
        attributes = element.attrs or {}
        role = str(attributes.get("role", "")).lower()
        marker = " ".join(
            [
                " ".join(attributes.get("class", []) or [])
                if isinstance(attributes.get("class"), list)
                else str(attributes.get("class", "")),
                str(attributes.get("id", "")),
            ]
        )
        if (
            role in _BOILERPLATE_ROLES
            or "hidden" in attributes
            or str(attributes.get("aria-hidden", "")).lower() == "true"
            or _HIDDEN_STYLE.search(str(attributes.get("style", "")))
            or (element.name not in ("body", "html", "main", "article") and _BOILERPLATE_WORDS.search(marker))
        ):
            element.decompose()
        elif element.name == "header" and element.find_parent(["article", "main"]) is None:
            element.decompose()

    root = soup.find("main") or soup.find(attrs={"role": "main"}) or soup.find("article") or soup.body or soup
    for table in reversed(root.find_all("table")):  # innermost first
        _table_rows_flatten(table)
    _list_items_mark(root)
    lines: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            line = " ".join("".join(current).split())
            if line:
                lines.append(body_escape(line))
            current.clear()

    # A block ends its line where it starts and where it ends, so neither the text before it
    # nor the text after it ("…the return.</p><a>Back</a>", "<div>Call us<p>…</p>tail</div>")
    # is glued to its own; whitespace between inline elements stays a space ("<b>Free</b>
    # <i>shipping</i>"). An explicit stack, not recursion: html.parser trees have no depth limit.
    stack: list[tuple[object, bool]] = [(child, False) for child in reversed(list(root.children))]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            flush()
            continue
        name = getattr(node, "name", None)
        if name is None:
            if not isinstance(node, Declaration | Doctype | ProcessingInstruction):
                current.append(str(node))
            continue
        if re.fullmatch(r"h[1-6]", name):
            flush()
            heading = " ".join(node.get_text(" ").split())
            if heading:
                lines.append("")
                lines.append("#" * int(name[1]) + " " + heading)
            continue  # its text is the heading line, read once
        if name in _BLOCK_TAGS:
            flush()
            stack.append((node, True))
        stack.extend((child, False) for child in reversed(list(node.children)))
    flush()
    # Every block (heading, paragraph, list item, table row) is a paragraph of its own, so
    # the chunker never glues one to the sentence after it.
    text = "\n\n".join(line for line in lines if line)
    if not title:
        first_heading = soup.find(["h1", "h2"])
        title = " ".join(first_heading.get_text(" ").split()) if first_heading else ""
    return {
        "title": title[:500],
        "pages": [{"page": None, "text": text}],
        "canonical_url": canonical_url,
        "links": links,
    }


def plain_parse(data: bytes, *, markdown: bool) -> dict:
    """A Markdown file's "#" lines are its headings; a plain text file has none (its "#" lines,
    "# of items: 3" or a shell comment, are text: `body_escape`)."""
    text = _markdown_tables(text_decode(data))
    title = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped:
            title = (stripped.lstrip("#") if markdown else stripped).strip()[:200]
            break
    if not markdown:
        text = body_escape(text)
    return {"title": title, "pages": [{"page": None, "text": text}], "canonical_url": "", "links": []}


def document_parse(kind: str, data: bytes, *, url: str = "", max_pages: int = 2000) -> dict:
    if kind == "pdf":
        return pdf_parse(data, max_pages=max_pages)
    if kind == "docx":
        return docx_parse(data)
    if kind == "html":
        return html_parse(data, url=url)
    if kind in ("text", "markdown"):
        return plain_parse(data, markdown=kind == "markdown")
    raise ParseError("unsupported", f"Unsupported file type: {kind}.")
