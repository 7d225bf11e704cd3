"""Reading the project's own Python source in tests."""

from __future__ import annotations

import ast
from pathlib import Path


def parse(path: Path) -> ast.Module:
    """`ast.parse` of a file, retried when CPython 3.11 trips over another thread.

    CPython 3.11's conversion of a parse tree to `ast` objects keeps its recursion depth in
    interpreter-wide state, so a compile in another thread of the same process (a test's
    server thread importing a module, say) can make it fail with `SystemError: AST constructor
    recursion depth mismatch` (fixed in 3.12). Each call starts its count afresh, so parsing
    again is enough; the source itself is never at fault.
    """
    source = path.read_text()
    for _ in range(4):
        try:
            return ast.parse(source, filename=str(path))
        except SystemError as error:
            if "recursion depth mismatch" not in str(error):
                raise
    return ast.parse(source, filename=str(path))
