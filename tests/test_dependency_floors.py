"""Minimum safe versions of the parsers and security libraries we depend on.

`pip-audit` cannot stand in for this here: without `--strict` it prints "No known
vulnerabilities found" and exits 0 while auditing nothing (no advisory database is
reachable from this machine); with `--strict` it fails. These floors come from the advisories
listed in the security test plan (§0, §3.2)."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent

FLOORS = {
    "pypdf": "6.19.0",  # ~30 DoS advisories since 2023 (nested filters, cyclic outlines, …)
    "urllib3": "2.7.0",  # decompression bombs incl. in redirect bodies
    "PyJWT": "2.13.0",  # crit header handling and algorithm checks
    "Django": "5.2.14",  # multipart / request-size advisories
}


@pytest.mark.parametrize(("package", "floor"), FLOORS.items())
def test_installed_version_meets_the_floor(package, floor):
    assert Version(version(package)) >= Version(floor), f"{package} {version(package)} < {floor}"


@pytest.mark.parametrize(("package", "floor"), FLOORS.items())
def test_pinned_version_meets_the_floor(package, floor):
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, pinned = line.split("==", 1)
            pins[name.split("[", 1)[0].strip().lower()] = pinned.strip()
    assert Version(pins[package.lower()]) >= Version(floor)


def test_litellm_is_not_from_the_compromised_release_line():
    installed = Version(version("litellm"))
    assert (installed.major, installed.minor) != (1, 107), (
        f"litellm {installed} is from the compromised 1.107.x line"
    )
    pinned = next(
        line.split("==", 1)[1].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.startswith("litellm==")
    )
    assert not pinned.startswith("1.107."), pinned
