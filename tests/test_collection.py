"""Every test package in the repository is collected by `make test` (pyproject's testpaths):
webhooks/tests once sat outside them and none of its tests ran in CI."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_tests_package_is_under_a_testpath():
    testpaths = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"][
        "testpaths"
    ]
    packages = {
        path.parent.relative_to(ROOT).parts[0]
        for path in ROOT.glob("*/tests/__init__.py")
        if not {".venv", "node_modules"} & set(path.parts)
    }
    packages |= {"tests"}
    assert packages <= set(testpaths), f"not collected by make test: {sorted(packages - set(testpaths))}"
