"""Shared fixtures for the installer tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "installer" / "examples"
MACHINES = REPO / "tests" / "machines"
PYTHON = "/usr/bin/python3"

sys.path.insert(0, str(Path(__file__).parent))


def machine(name: str) -> dict:
    return json.loads((MACHINES / f"{name}.json").read_text())


def cli_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{REPO}:{REPO / 'installer'}:{REPO / 'netboot'}"
    env.pop("HYPERCORE_INSTALL_CRASH_AFTER", None)
    return env


def run_cli(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 300):
    """hypercore-install as a separate process (as an operator runs it)."""
    return subprocess.run([PYTHON, "-m", "hypercore_installer.cli", *map(str, args)],
                          capture_output=True, text=True, env=env or cli_env(), input=input,
                          timeout=timeout, cwd=REPO)


@pytest.fixture
def cli(capsys):
    """hypercore-install in this process: returns (exit code, stdout, stderr)."""
    from hypercore_installer.cli import main

    def call(*args: str):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err
    return call


def write_answers(tmp_path: Path, text: str, name: str = "answers.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


BASE_ANSWERS = """\
target: {path: /dev/nvme0n1}
hostname: node1
root:
  ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq0n4lJd0PpX8d5f5v0lG3u9x1y2z3A4b5c6d7e8f9g admin@laptop"]
ceph: {mode: new, osd_disks: [/dev/sda]}
"""
