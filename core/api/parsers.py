"""The API's request parsers, with one guard for input no layer below can hold.

Postgres text and jsonb cannot store a NUL character (`\\u0000`, valid in JSON and in a
query string) and UTF-8 cannot encode a lone surrogate (`"\\ud800"`): either raised a
`DataError`/`UnicodeEncodeError` deep in a write, a 500. Thousands of nested arrays exhaust
the JSON decoder's recursion (`RecursionError`), and a structure nested a few hundred deep
is no legitimate trait or metadata either. Rather than patch each field, every body the
API parses (JSON, form, multipart) and every query string under `/api/` passes
`input_problem()` once, and anything it names is a 400 in the error shape.
"""

from __future__ import annotations

from rest_framework import parsers
from rest_framework.exceptions import ParseError

# Deeper than any real traits/metadata document, shallow enough that nothing downstream
# (serializers, jsonb, templates) recurses dangerously.
MAX_NESTING = 32


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "NUL characters (\\u0000) are not accepted."
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "Text must be valid Unicode (no lone surrogates)."
    return None


def input_problem(value) -> str | None:
    """What makes `value` (parsed JSON, or form fields) unstorable, or None. Iterative, so
    the check itself cannot run out of stack."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            problem = _text_problem(item)
            if problem:
                return problem
        elif isinstance(item, (dict, list, tuple)):
            if depth >= MAX_NESTING:
                return f"Input is nested too deeply (more than {MAX_NESTING} levels)."
            if isinstance(item, dict):
                for key, child in item.items():
                    pending.append((key, depth + 1))
                    pending.append((child, depth + 1))
            else:
                pending.extend((child, depth + 1) for child in item)
    return None


def query_problem(query) -> str | None:
    """`query`: a QueryDict (request.GET)."""
    for key, values in query.lists():
        problem = _text_problem(key) or next(filter(None, map(_text_problem, values)), None)
        if problem:
            return problem
    return None


def _guard(data) -> None:
    if hasattr(data, "lists"):  # QueryDict (form and multipart fields)
        problem = query_problem(data)
    else:
        problem = input_problem(data)
    if problem:
        raise ParseError(problem)


class GuardedJSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"Input is nested too deeply (more than {MAX_NESTING} levels).") from None
        _guard(data)
        return data


class GuardedFormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _guard(data)
        return data


class GuardedMultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        _guard(result.data)
        for upload in result.files.values():
            problem = _text_problem(upload.name or "")
            if problem:
                raise ParseError(problem)
        return result
