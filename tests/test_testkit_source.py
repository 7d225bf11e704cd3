"""`testkit.source.parse` outlasts CPython 3.11's cross-thread AST failure, and only that."""

from __future__ import annotations

import ast

import pytest

from testkit import source


def test_parse_tries_again_after_the_recursion_depth_mismatch(monkeypatch, tmp_path):
    path = tmp_path / "module.py"
    path.write_text("def main():\n    return 1\n")
    real_parse = ast.parse
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) < 3:
            raise SystemError("AST constructor recursion depth mismatch (before=138, after=35)")
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(source.ast, "parse", flaky)
    tree = source.parse(path)
    assert [node.name for node in tree.body] == ["main"]
    assert len(calls) == 3


def test_parse_lets_other_errors_through(monkeypatch, tmp_path):
    path = tmp_path / "module.py"
    path.write_text("x = 1\n")

    def broken(*args, **kwargs):
        raise SystemError("something else")

    monkeypatch.setattr(source.ast, "parse", broken)
    with pytest.raises(SystemError, match="something else"):
        source.parse(path)
    path.write_text("def broken(:\n")
    monkeypatch.undo()
    with pytest.raises(SyntaxError):
        source.parse(path)
