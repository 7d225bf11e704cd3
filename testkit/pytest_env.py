"""The test run's Redis, named before anything reads the settings.

Loaded with `-p testkit.pytest_env` (pyproject's `addopts`): pytest imports such a plugin
while it parses the command line, before pytest-django reads `supportai.settings`. The root
conftest.py is read after that, so a default set there would reach xdist workers (they get the
controller's environment) but not a plain `pytest path/to/test.py`, which then ran without
Redis at all. `REDIS_URL` set (even empty: the Postgres-only path) is kept as it is."""

import os

os.environ.setdefault("REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
