"""SITE_URL for a manage.py command run by hand beside `make run` on another port.

Found walking the product on a fresh clone: `PORT=8801 make run`, then in another shell
`manage.py create_widget …` printed `<script src="http://127.0.0.1:8000/widget.js" …>`, a
snippet pointing at nothing. `make run` now records its address in the data folder, and
settings use it when neither SITE_URL nor PORT is given.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRINT_SITE_URL = "from django.conf import settings; print(settings.SITE_URL)"


def _site_url_in_a_new_process(data_dir: Path, **env: str) -> str:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PORT", "SITE_URL", "PUBLIC_BASE_URL", "SUPPORTAI_ENV"}
    }
    environment.update(SUPPORTAI_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="supportai.settings", **env)
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", PRINT_SITE_URL], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _record(data_dir: Path, monkeypatch, **env: str) -> None:
    """What scripts/run.py does at start, with the environment `make run` was given."""
    for name in ("PORT", "SITE_URL", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    run = runpy.run_path(str(ROOT / "scripts" / "run.py"), run_name="run_for_test")
    run["site_url_record"](data_dir)


def test_a_command_beside_make_run_on_another_port_uses_its_address(tmp_path, monkeypatch):
    assert _site_url_in_a_new_process(tmp_path) == "http://127.0.0.1:8000"  # nothing recorded yet
    _record(tmp_path, monkeypatch, PORT="8801")
    assert (tmp_path / "site_url").read_text() == "http://127.0.0.1:8801\n"
    assert _site_url_in_a_new_process(tmp_path) == "http://127.0.0.1:8801"
    # An explicit PORT or SITE_URL in the command's own environment still wins.
    assert _site_url_in_a_new_process(tmp_path, PORT="8123") == "http://127.0.0.1:8123"
    assert (
        _site_url_in_a_new_process(tmp_path, SITE_URL="https://support.example") == "https://support.example"
    )


def test_make_run_with_a_site_url_records_it(tmp_path, monkeypatch):
    _record(tmp_path, monkeypatch, PORT="8801", SITE_URL="https://support.example/")
    assert _site_url_in_a_new_process(tmp_path) == "https://support.example"
