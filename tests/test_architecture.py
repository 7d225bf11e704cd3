"""The allowed import directions (docs/architecture.md, "Where things live"), checked on
every Python file of the repository — imports inside functions too.

    core  ←  organizations  ←  assistants  ←  knowledge  ←  chat  ←  widget
    core  ←  organizations  ←  webhooks
    supportai (settings, urls, Celery app, WSGI, process glue) may import anything;
    no app and not core imports supportai.
    testkit (helpers shared by tests and bench) imports no test module and not bench;
    tests never import bench; bench never imports a test module.

A new import against these directions fails here with the file, line and rule. Move the
code to the right home rather than adding an exception.
"""

from __future__ import annotations

import ast
from pathlib import Path

from testkit.source import parse

ROOT = Path(__file__).resolve().parent.parent

# Each app and what it may import from the project (itself included).
APP_LAYERS = ["core", "organizations", "assistants", "knowledge", "chat", "widget"]
ALLOWED: dict[str, set[str]] = {app: set(APP_LAYERS[: index + 1]) for index, app in enumerate(APP_LAYERS)}
ALLOWED["webhooks"] = {"core", "organizations", "webhooks"}
PROJECT = {*ALLOWED, "supportai", "testkit", "bench", "tests", "scripts"}
SKIPPED_DIRS = {".venv", ".git", ".data", "node_modules", "__pycache__", "staticfiles", "sdk"}


def _python_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if not SKIPPED_DIRS & set(parts):
            files.append(path)
    return files


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file, relative ones resolved."""
    tree = parse(path)
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from chat import services` imports chat.services
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return found


def _is_test_module(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "tests" or "tests" in parts[1:] or parts[-1] == "conftest"


def _refusal(importer: str, imported: str) -> str | None:
    """Why `importer` may not import `imported`, or None when it may."""
    top, target = importer.split(".")[0], imported.split(".")[0]
    if target not in PROJECT or target == top:
        return None
    if _is_test_module(importer):
        return "tests never import bench (shared helpers live in testkit/)" if target == "bench" else None
    if top == "testkit":
        if target == "bench" or _is_test_module(imported):
            return "testkit imports neither bench nor a test module"
        return None
    if top == "bench":
        return "bench never imports a test module (use testkit/)" if _is_test_module(imported) else None
    if top in ALLOWED:
        if _is_test_module(imported) or target in {"bench", "testkit"}:
            return f"{top} is application code: it imports no test helper"
        if target not in ALLOWED[top]:
            if target == "supportai":
                return f"{top} imports supportai, the roof (move what it needs to core/ or the app)"
            return f"{top} may import only {sorted(ALLOWED[top] - {top})}; {target} is above it"
    return None  # supportai, scripts, top-level files: the roof


def violations() -> list[str]:
    found: dict[tuple[str, int], str] = {}
    for path in _python_files():
        importer = _module_name(path)
        for line, imported in _imports(path):
            why = _refusal(importer, imported)
            where = (str(path.relative_to(ROOT)), line)
            if why and where not in found:
                found[where] = f"{where[0]}:{line} imports {imported}: {why}"
    return [found[where] for where in sorted(found)]


def test_imports_follow_the_allowed_directions():
    found = violations()
    assert found == [], "\n".join(found)


def test_the_check_sees_a_wrong_import():
    """The rule itself: an upward, a roof and a bench import are each refused."""
    assert _refusal("organizations.services", "chat.models")
    assert _refusal("core.errors", "organizations.models")
    assert _refusal("knowledge.selectors", "supportai.settings")
    assert _refusal("webhooks.services", "chat.models")
    assert _refusal("tests.test_x", "bench.common")
    assert _refusal("knowledge.tests.test_x", "bench.processes")
    assert _refusal("bench.widget", "widget.tests.hostpage")
    assert _refusal("testkit.sites", "bench.common")
    assert _refusal("chat.models", "testkit.fixtures")
    assert _refusal("chat.services", "knowledge.selectors") is None
    assert _refusal("widget.api", "chat.services") is None
    assert _refusal("supportai.urls", "widget.urls") is None
    assert _refusal("tests.test_x", "testkit.processes") is None
    assert _refusal("chat.tests.test_x", "widget.models") is None
