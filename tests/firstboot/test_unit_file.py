"""hypercore-firstboot.service: when it runs, what it runs, where it prints."""

from __future__ import annotations

import configparser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "overlays/hypercore/usr/lib/systemd/system/hypercore-firstboot.service"
PRESET = REPO / "overlays/base/usr/lib/systemd/system-preset/10-hypercore.preset"


def unit() -> configparser.ConfigParser:
    c = configparser.ConfigParser(strict=False, interpolation=None)
    c.optionxform = str
    # ConditionPathExists= appears several times: keep them all.
    text = UNIT.read_text()
    conditions = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith("ConditionPathExists=")]
    c.read_string("\n".join(line for line in text.splitlines() if not line.startswith("ConditionPathExists=")))
    c.conditions = conditions
    return c


def test_runs_only_on_an_installed_node_until_done():
    c = unit()
    assert c.conditions == ["/etc/hypercore/answers.yaml", "!/etc/hypercore/live",
                            "!/var/lib/hypercore/firstboot/complete"]
    assert "network-online.target" in c["Unit"]["After"] and "local-fs.target" in c["Unit"]["After"]
    assert c["Unit"]["Wants"] == "network-online.target"
    assert c["Unit"]["RequiresMountsFor"] == "/var/lib"


def test_runs_the_cli_once_and_prints_on_the_console():
    s = unit()["Service"]
    assert s["Type"] == "oneshot"
    assert s["ExecStart"] == "/usr/local/bin/hypercore-install firstboot"
    assert s["StandardOutput"] == "journal+console"
    assert "Restart" not in s  # a failure stays failed: no loop


def test_enabled_by_preset():
    assert "enable hypercore-firstboot.service" in PRESET.read_text().splitlines()
    assert unit()["Install"]["WantedBy"] == "multi-user.target"
