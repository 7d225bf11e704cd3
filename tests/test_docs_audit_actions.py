"""docs/security.md's list of audit event actions stays true: every action the code records is
listed, and every listed action is recorded somewhere (SPEC's examples included)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ["assistants", "chat", "core", "knowledge", "organizations", "supportai", "webhooks", "widget"]
RECORDERS = {"audit_record", "audit_request", "audit_record_for_user", "audit"}
ACTION = re.compile(r"^[a-z_]+\.[a-z_]+$")


def _sources():
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "tests" in path.parts or "migrations" in path.parts:
                continue
            yield path


def _recorded() -> set[str]:
    """Actions passed to the audit recorders: literal strings, and f"prefix.{name}" whose
    `name` comes from a dict of literal suffixes in the same function (the desk's
    state changes)."""
    actions = set()
    for path in _sources():
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            suffixes = {
                value.value
                for node in ast.walk(function)
                if isinstance(node, ast.Dict)
                for value in node.values
                if isinstance(value, ast.Constant) and isinstance(value.value, str)
            }
            for call in ast.walk(function):
                if not isinstance(call, ast.Call):
                    continue
                name = getattr(call.func, "id", None) or getattr(call.func, "attr", None)
                if name not in RECORDERS:
                    continue
                arg = next((k.value for k in call.keywords if k.arg == "action"), None)
                if arg is None and call.args:
                    arg = call.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    actions.add(arg.value)
                elif isinstance(arg, ast.JoinedStr) and isinstance(arg.values[0], ast.Constant):
                    prefix = arg.values[0].value
                    actions |= {prefix + suffix for suffix in suffixes if ACTION.match(prefix + suffix)}
    return actions


def _documented() -> set[str]:
    text = (ROOT / "docs" / "security.md").read_text()
    section = text.split("### Audit event actions\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([a-z_]+\.[a-z_]+)`", row.split(" | ", 1)[0])}


def test_the_scan_finds_literal_and_composed_actions():
    recorded = _recorded()
    assert {"api_key.created", "webhook.disabled", "knowledge.embedder_switched"} <= recorded
    assert {"conversation.resolved", "conversation.handed_back", "conversation.reopened"} <= recorded


def test_every_recorded_action_is_documented_and_every_documented_one_recorded():
    recorded, documented = _recorded(), _documented()
    assert not recorded - documented, f"recorded but not in docs/security.md: {sorted(recorded - documented)}"
    assert not documented - recorded, (
        f"in docs/security.md but recorded nowhere: {sorted(documented - recorded)}"
    )


def test_the_specs_example_actions_are_recorded():
    spec_examples = {
        "api_key.created",
        "api_key.revoked",
        "member.role_changed",
        "privacy.erased",
        "conversation.taken_over",
    }
    assert spec_examples <= _recorded()
