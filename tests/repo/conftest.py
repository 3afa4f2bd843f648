"""Fixtures for the golden-image repository tests: two nodes with BTRFS, netns and sshd."""

from __future__ import annotations

import pytest

from tests.repo.nodes import Pair


@pytest.fixture
def pair():
    p = Pair()
    try:
        yield p
    finally:
        p.close()
