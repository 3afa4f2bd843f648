"""apply --dry-run: the whole install walked through the one runner, printing
commands for a recorded machine; nothing runs and no secret is printed."""

from __future__ import annotations

import re

import pytest

from tests.installer.conftest import EXAMPLES, MACHINES, run_cli

CASES = [("single-node", "workstation-nvme-usb"), ("join-cluster", "twin-disks"),
         ("unattended-netboot", "rack-server-reinstall")]


@pytest.mark.parametrize("example,machine", CASES)
def test_every_example_dry_runs(example, machine, cli):
    code, out, err = cli("apply", EXAMPLES / f"{example}-answers.yaml", "--machine",
                         MACHINES / f"{machine}.json", "--dry-run")
    assert code == 0, err
    assert "Dry run complete; nothing was changed." in out
    steps = re.findall(r"^\[(\d+)/(\d+)\] ", out, re.M)
    assert steps and steps[-1][0] == steps[-1][1]
    commands = [line[2:] for line in out.splitlines() if line.startswith("+ ")]
    assert any(c.startswith("copy /dev/sd") and "read-only) to /dev/" in c for c in commands)
    assert any(c.startswith("sfdisk --relocate gpt-bak-std") for c in commands)
    assert any(c.startswith("mkfs.btrfs --force --label hypercore-data") for c in commands)
    assert sum(c.startswith("btrfs subvolume create") for c in commands) == 8
    # Secrets never reach the console.
    assert "$6$" not in out and "AQBvaBFZ" not in out
    assert "chpasswd --encrypted --root /run/hypercore-install/mnt/root  <<< (secret, not shown)" in out


def test_dry_run_of_a_join_wipes_nothing_it_may_not(cli):
    code, out, _ = cli("apply", EXAMPLES / "join-cluster-answers.yaml", "--machine", MACHINES / "twin-disks.json",
                       "--dry-run")
    assert code == 0
    writes = (set(re.findall(r"of=(/dev/\w+)", out)) | set(re.findall(r"read-only\) to (/dev/\w+)", out))
              | set(re.findall(r"wipefs --all (/dev/\w+)", out)))
    assert writes == {"/dev/sda"}       # the image copy only; the OSD disks are blank


def test_apply_refuses_a_recorded_machine_without_dry_run(cli):
    code, out, err = cli("apply", EXAMPLES / "single-node-answers.yaml", "--machine",
                         MACHINES / "workstation-nvme-usb.json", "--yes")
    assert code == 1 and out == ""
    assert "an install can only happen on this one" in err and "--dry-run" in err


def test_refused_plan_stops_apply_before_anything(cli):
    code, out, err = cli("apply", EXAMPLES / "unattended-netboot-answers.yaml", "--machine",
                         MACHINES / "server-3disks.json", "--dry-run")
    assert code == 1 and "+ " not in out
    assert "selects 2 disks" in err


def test_help_texts():
    for args in ([], ["apply"], ["plan"], ["validate"], ["probe"], ["interactive"]):
        proc = run_cli(*args, "--help")
        assert proc.returncode == 0 and proc.stdout.startswith("usage: hypercore-install")
        assert "--source-disk" not in proc.stdout and "--workdir" not in proc.stdout
    top = run_cli("--help").stdout
    for cmd in ("probe", "validate", "plan", "apply", "interactive"):
        assert cmd in top
    assert "--yes" in run_cli("apply", "--help").stdout
    assert "--dry-run" in run_cli("interactive", "--help").stdout


def test_interactive_without_a_terminal_says_so():
    proc = run_cli(input="")
    assert proc.returncode == 1
    assert "interactive mode needs a terminal" in proc.stderr and "hint:" in proc.stderr
