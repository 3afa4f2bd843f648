"""The sweep of expired join tokens: a timer, enabled by the preset."""

from __future__ import annotations

import configparser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "overlays/hypercore/usr/lib/systemd/system"
PRESET = REPO / "overlays/base/usr/lib/systemd/system-preset/10-hypercore.preset"


def read(name: str) -> configparser.ConfigParser:
    c = configparser.ConfigParser(strict=False, interpolation=None)
    c.optionxform = str
    c.read_string((UNITS / name).read_text())
    return c


def test_the_timer_runs_the_sweep_and_is_enabled():
    t = read("hypercore-join-token-sweep.timer")
    assert t["Timer"]["OnUnitActiveSec"] and t["Install"]["WantedBy"] == "timers.target"
    s = read("hypercore-join-token-sweep.service")
    assert s["Service"]["Type"] == "oneshot"
    assert s["Service"]["ExecStart"] == "/usr/local/bin/hypercore cluster sweep-tokens"
    assert "enable hypercore-join-token-sweep.timer" in PRESET.read_text().splitlines()
