"""The README's configuration table stays true: every environment variable the settings read
has a row (or is named in one), and no row names a variable nothing reads any more."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Besides supportai/settings.py, the files that read the process-level variables the README
# documents (`make run`'s runner, gunicorn's configuration and worker, the embedded Postgres).
OTHER_READERS = [
    "gunicorn.conf.py",
    "scripts/run.py",
    "supportai/gunicorn_worker.py",
    "supportai/embedded_postgres.py",
]

# env.str("NAME", ...), env.int(...), env.db(...), os.environ.get("NAME"), a helper called
# with the name first (_token_budget("NAME", ...), _whole_number("NAME", ...)).
READ = re.compile(
    r"""(?:\benv\.(?:str|int|bool|float|list|db)|os\.environ\.get|os\.getenv|_token_budget|_whole_number)"""
    r"""\(\s*["']([A-Z][A-Z0-9_]+)["']"""
)


def _reads(relative: str) -> set[str]:
    return set(READ.findall((ROOT / relative).read_text()))


def _configuration_table() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ")]


def test_the_patterns_find_what_settings_read():
    reads = _reads("supportai/settings.py")
    # A few known reads of each shape, so a pattern that stopped matching cannot pass vacuously.
    assert {
        "SECRET_KEY",
        "DATABASE_URL",
        "LLM_DAILY_TOKEN_BUDGET",
        "SUPPORTAI_DATA_DIR",
        "LIVE_STREAMS_PER_IP",
    } <= reads
    assert len(_configuration_table()) > 30


def test_every_variable_the_settings_read_is_in_the_configuration_table():
    table = "\n".join(_configuration_table())
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    missing = sorted(_reads("supportai/settings.py") - documented)
    assert not missing, f"README's configuration table does not mention: {missing}"


def test_every_row_names_a_variable_something_reads():
    known = _reads("supportai/settings.py").union(*(_reads(path) for path in OTHER_READERS))
    named = set()
    for row in _configuration_table()[2:]:  # after the header and its rule
        first_column = row.split(" | ", 1)[0]
        named |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_column))
    stale = sorted(named - known)
    assert not stale, f"README's configuration table names variables nothing reads: {stale}"
