"""Cutting extracted text into chunks that respect headings and sentences, with overlap.

Extractors hand over text where headings are Markdown lines (`# Title`, `## Section`), and a
body line that starts with "#" escaped with a backslash (`parsing.body_escape`): it is text, and
the chunk shows it without the backslash.
A chunk never spans two pages, starts a new section when the previous one is long enough
to stand alone, never breaks a sentence unless that sentence alone exceeds the chunk size,
and repeats the previous chunk's last sentences (up to `overlap_chars`) so an answer that
straddles a boundary is still found whole.
A PDF's section that runs onto the next page keeps its heading there (`pages_chunk`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from knowledge.types import ChunkDraft

# What cut a stored document's chunks: the parsers (`knowledge.parsing`) and this chunker
# together. Raise it in a release that changes what chunks the same file or page yields;
# documents stored by an older one (`KnowledgeDocument.parser_version`) are cut again by
# `manage.py knowledge_reparse`, and a re-sync no longer keeps a page whose text is unchanged
# but was cut by an older one. 0: stored before versions were recorded; 1: PDF headings read
# from fonts and carried onto the next page, body lines starting with "#" escaped, list, table
# and paragraph boundaries kept; 2: a PDF's table under a header row, each cell a run of its
# own, read as rows naming their columns ("Destination: Canada; Standard: …"), as HTML tables
# are. `knowledge/tests/test_parser_version.py` pins the chunks of a small corpus per version,
# so a change that cuts documents differently fails until it is raised.
PARSER_VERSION = 2

MAX_CHARS = 1500
OVERLAP_CHARS = 200
MIN_SECTION_CHARS = 300

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_ESCAPED_HASH = re.compile(r"^\\(?=\\*#)")  # `parsing.body_escape`'s backslash
_ESCAPED_HASH_LINE = re.compile(r"^\\(?=\\*#)", re.M)
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9À-Ý])")
_BLANK_LINES = re.compile(r"\n\s*\n+")
# Lines that start a block of their own even without a blank line before them: Markdown
# list items ("- ", "* ", "1. ") and table rows ("| a | b |").
_BLOCK_START = re.compile(r"^(?:[-*+•]\s+\S|\d{1,3}[.)]\s+\S|\|)")
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")


@dataclass
class _Section:
    heading: str
    units: list[str]


def body_unescape(text: str) -> str:
    """Normalised text (`text_normalise`) as a reader sees it: each escaped "#" line without
    the one backslash `parsing.body_escape` added, as the chunker shows it in a chunk."""
    return _ESCAPED_HASH_LINE.sub("", text)


def text_normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _sentences(paragraph: str, max_chars: int) -> list[str]:
    paragraph = " ".join(paragraph.split())
    pieces = [piece.strip() for piece in _SENTENCE_END.split(paragraph) if piece.strip()]
    units: list[str] = []
    for piece in pieces:
        while len(piece) > max_chars:
            cut = piece.rfind(" ", 0, max_chars)
            if cut < max_chars // 2:
                cut = max_chars
            units.append(piece[:cut].strip())
            piece = piece[cut:].strip()
        if piece:
            units.append(piece)
    return units


def _sections(text: str, max_chars: int, *, heading_carried: str = "") -> list[_Section]:
    """`heading_carried`: the heading of the text before the first heading line, if any."""
    sections = [_Section(heading="", units=[])]

    def paragraph_add(lines: list[str]) -> None:
        units = _sentences(" ".join(lines), max_chars)
        if units and sections[-1].units:
            units[0] = "\n" + units[0]  # a paragraph boundary stays visible to the reader
        sections[-1].units.extend(units)

    for block in _BLANK_LINES.split(text):
        paragraph_lines: list[str] = []
        for line in block.split("\n"):
            match = _HEADING.match(line)
            if match:
                if paragraph_lines:
                    paragraph_add(paragraph_lines)
                    paragraph_lines = []
                heading = match.group(2).strip()[:500]
                sections.append(_Section(heading=heading, units=[]))
            elif line.strip():
                line = _ESCAPED_HASH.sub("", line, count=1)
                if paragraph_lines and _BLOCK_START.match(line.strip()):
                    paragraph_add(paragraph_lines)  # a list item or table row is its own paragraph
                    paragraph_lines = []
                paragraph_lines.append(line)
        if paragraph_lines:
            paragraph_add(paragraph_lines)
    if sections[0].units:
        sections[0].heading = heading_carried
    return [section for section in sections if section.units or section.heading]


def text_chunk(
    text: str,
    *,
    page: int | None = None,
    max_chars: int = MAX_CHARS,
    overlap_chars: int = OVERLAP_CHARS,
    sections_apart: bool = False,
    heading_carried: str = "",
) -> list[ChunkDraft]:
    """`heading_carried`: the heading the text before the first heading line is under (a
    section begun on the previous page: `pages_chunk`); the chunk shows it as its first line,
    as it shows a heading printed over the text, and has it as its heading.

    `sections_apart`: every heading with text under it starts a chunk, however short the
    section before it (a PDF's headings read from its fonts: a product sheet's "Care" and
    "Warranty" paragraphs are passages of their own, so a question on one is not weighed against
    the others). Otherwise a section shorter than MIN_SECTION_CHARS shares a chunk with the next
    (tried as the rule for every format and dropped: docs/benchmarks.md, shopper questions)."""
    text = text_normalise(text)
    if not text:
        return []
    drafts: list[ChunkDraft] = []
    buffer: list[str] = []
    buffer_heading = ""
    buffer_length = 0
    carried = 0  # how many of buffer's units are overlap from the previous chunk

    def flush() -> None:
        nonlocal buffer, buffer_length, carried
        if len(buffer) > carried:
            content = re.sub(r" ?\n ?", "\n", " ".join(buffer)).strip()
            drafts.append(ChunkDraft(content=content, heading=buffer_heading, page=page))
        buffer, buffer_length, carried = [], 0, 0

    for section in _sections(text, max_chars, heading_carried=heading_carried):
        heading_line = f"{section.heading}\n" if section.heading else ""
        section_length = len(heading_line) + sum(len(unit) + 1 for unit in section.units)
        has_body = any(not item.endswith("\n") for item in buffer[carried:])
        if has_body and (
            sections_apart or buffer_length >= MIN_SECTION_CHARS or buffer_length + section_length > max_chars
        ):
            flush()
        if not any(not item.endswith("\n") for item in buffer[carried:]):
            buffer_heading = section.heading or buffer_heading  # the most specific heading
        if heading_line:
            # On a line of its own, never glued to the end of the text before it.
            buffer.append(("\n" if len(buffer) > carried else "") + heading_line.strip() + "\n")
            buffer_length += len(heading_line)
        for unit in section.units:
            if buffer_length + len(unit) + 1 > max_chars and len(buffer) > carried:
                previous = buffer
                flush()
                buffer_heading = section.heading or buffer_heading
                # Overlap: the previous chunk's last sentences, up to overlap_chars.
                tail: list[str] = []
                for sentence in reversed(previous):
                    if sum(len(item) for item in tail) + len(sentence) > overlap_chars:
                        break
                    tail.insert(0, sentence.strip())
                buffer, buffer_length, carried = tail, sum(len(item) + 1 for item in tail), len(tail)
            buffer.append(unit)
            buffer_length += len(unit) + 1
    flush()
    return drafts


def pages_chunk(pages: Iterable[dict]) -> list[ChunkDraft]:
    """The chunks of a parsed document's pages (`parsing`'s {"page", "text", "sections_apart"}),
    each page chunked on its own, for its page number.

    In a PDF whose headings were read from its fonts (its pages with headings have
    "sections_apart"), the heading in force at the end of a page goes on over the next page's
    text before its first heading: the second half of a "Warranty" section ("Claims need the
    order number…") is a chunk under "Warranty", not a passage about nothing. A document with no
    such page, and every other format, is chunked as each page alone."""
    drafts: list[ChunkDraft] = []
    carried = ""
    for page in pages:
        sections_apart = page.get("sections_apart", False)
        text = page["text"]
        drafts.extend(
            text_chunk(text, page=page["page"], sections_apart=sections_apart, heading_carried=carried)
        )
        if sections_apart:
            headings = [
                section.heading for section in _sections(text_normalise(text), MAX_CHARS) if section.heading
            ]
            carried = headings[-1] if headings else carried
    return drafts
