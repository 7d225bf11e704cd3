"""Static files under the production stack (collectstatic, then gunicorn + WhiteNoise) go out
compressed to a browser that accepts gzip, and plain to one that does not."""

from __future__ import annotations

import gzip
import subprocess

import pytest
import requests

from testkit import processes
from tests.test_attack_web import _production_env


@pytest.mark.chaos
@pytest.mark.django_db(transaction=True)
def test_css_and_js_are_served_gzipped_under_gunicorn(procs, live_env, tmp_path):
    env = _production_env(live_env, STATIC_ROOT=str(tmp_path / "static"), SECURE_SSL_REDIRECT="False")
    subprocess.run(
        [str(processes.BIN / "python"), "manage.py", "collectstatic", "--noinput"],
        env=env,
        cwd=processes.ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    _web, url = procs.gunicorn(env=env, workers=1)
    icon = requests.get(url + "/favicon.ico", timeout=10)  # `public/`, at the site root
    assert icon.status_code == 200 and icon.content[:4] == b"\x00\x00\x01\x00", icon.headers
    for path in ("/static/dashboard/app.css", "/static/dashboard/app.js", "/static/widget/widget.js"):
        plain = requests.get(url + path, headers={"Accept-Encoding": "identity"}, timeout=10)
        assert plain.status_code == 200 and "Content-Encoding" not in plain.headers, (path, plain.headers)
        packed = requests.get(url + path, headers={"Accept-Encoding": "gzip"}, stream=True, timeout=10)
        assert packed.status_code == 200, path
        assert packed.headers["Content-Encoding"] == "gzip", (path, packed.headers)
        assert "Accept-Encoding" in packed.headers["Vary"]
        body = packed.raw.read()
        assert len(body) < len(plain.content) / 2  # really compressed, not just labelled
        assert gzip.decompress(body) == plain.content
