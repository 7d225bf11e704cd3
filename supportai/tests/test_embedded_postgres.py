"""The embedded Postgres is configured before it starts: `supportai.conf`, included by
postgresql.conf, carries the settings the product relies on (shared_buffers sized so a large
organization's HNSW index stays in Postgres's own cache)."""

from __future__ import annotations

import os

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured

from supportai import embedded_postgres


def test_configuration_is_written_once_and_included_once(tmp_path, monkeypatch):
    (tmp_path / "postgresql.conf").write_text("max_connections = 100\n")
    monkeypatch.setenv("EMBEDDED_POSTGRES_SHARED_BUFFERS", "256MB")
    embedded_postgres.configuration_write(tmp_path)
    embedded_postgres.configuration_write(tmp_path)
    main = (tmp_path / "postgresql.conf").read_text()
    assert main.startswith("max_connections = 100\n")
    assert main.count("include_if_exists = 'supportai.conf'") == 1
    assert "shared_buffers = '256MB'" in (tmp_path / "supportai.conf").read_text()

    monkeypatch.setenv("EMBEDDED_POSTGRES_SHARED_BUFFERS", "")  # unset: the default
    embedded_postgres.configuration_write(tmp_path)
    default = embedded_postgres.shared_buffers_default()
    assert f"shared_buffers = '{default}'" in (tmp_path / "supportai.conf").read_text()
    assert 128 <= int(default.removesuffix("MB")) <= 1024


@pytest.mark.parametrize("value", ["lots", "1 GB; fsync = off", "512mb\nfsync = off", "-1MB"])
def test_a_malformed_setting_is_refused_before_it_reaches_the_file(tmp_path, monkeypatch, value):
    (tmp_path / "postgresql.conf").write_text("")
    monkeypatch.setenv("EMBEDDED_POSTGRES_SHARED_BUFFERS", value)
    with pytest.raises(ImproperlyConfigured, match="EMBEDDED_POSTGRES_SHARED_BUFFERS"):
        embedded_postgres.configuration_write(tmp_path)
    assert not (tmp_path / "supportai.conf").exists()


def test_a_fresh_embedded_server_starts_with_the_configured_shared_buffers(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if os.geteuid() == 0:
        # The server runs as its own system user, which must be able to reach the folder.
        tmp_path.chmod(0o755)
        data_dir.chmod(0o755)
    monkeypatch.setenv("EMBEDDED_POSTGRES_SHARED_BUFFERS", "160MB")
    url = embedded_postgres.embedded_database_url(data_dir)
    assert f"host={data_dir / 'pg'}" in url, url  # its own server, not the suite's
    try:
        with psycopg.connect(url, connect_timeout=10) as connection:
            assert connection.execute("SHOW shared_buffers").fetchone()[0] == "160MB"
    finally:
        embedded_postgres.embedded_database_stop(data_dir)
