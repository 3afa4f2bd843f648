"""Shared fixtures: the built image and QEMU machines booted from it."""

from __future__ import annotations

from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent
BUILD = TOP / "build"


def pytest_addoption(parser):
    parser.addoption("--heavy", action="store_true",
                     help="also run the tests marked heavy (multi-node failure and removal; "
                          "too long for CI, see the README's Testing section)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--heavy"):
        return
    later = pytest.mark.skip(reason="heavy: run with ./tools/run-tests --heavy")
    for item in items:
        if "heavy" in item.keywords:
            item.add_marker(later)


@pytest.fixture(scope="session")
def image() -> Path:
    """build/hypercore.raw; the boot tests fail (never skip) when it is missing."""
    raw = BUILD / "hypercore.raw"
    if not raw.exists():
        pytest.fail(f"{raw} does not exist: build it with tools/build-image "
                    "(tools/run-tests does this first)")
    return raw


@pytest.fixture(scope="session")
def netboot_dir(image: Path) -> Path:
    return BUILD / "netboot"
