"""Settings read configuration only: importing them starts no server and writes no file."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_settings_starts_nothing_and_writes_nothing(tmp_path):
    data_dir = tmp_path / "data"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "SECRET_KEY", "SUPPORTAI_ENV"}
    }
    env["SUPPORTAI_DATA_DIR"] = str(data_dir)
    code = (
        "import django.conf, supportai.settings as s; "
        "print(s.DATABASES['default']['OPTIONS']['host']); print(bool(s.SECRET_KEY))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    host, has_key = result.stdout.split()
    assert host == str((data_dir / "pg").resolve())  # where the server will listen once started
    assert has_key == "True"
    assert not data_dir.exists()  # no secret_key file, no pg cluster, no run dir


def test_process_start_writes_the_development_key_once(tmp_path):
    from supportai.startup import development_secret_key_ensure

    development_secret_key_ensure(tmp_path)
    key = (tmp_path / "secret_key").read_text()
    development_secret_key_ensure(tmp_path)
    assert (tmp_path / "secret_key").read_text() == key and len(key) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
