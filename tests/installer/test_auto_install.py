"""`hypercore-install auto` for real on loop devices (the lab of
test_apply_loop.py): answers from a credential, installed unattended, the
boot-state marker, a second run refused with the disks untouched, and a plan
refused before any write leaving no marker behind."""

from __future__ import annotations

import json
import os
import stat
import uuid

import pytest
import yaml

from tests.installer.conftest import cli_env, run_cli
from tests.installer.loopdisks import GiB, loop_device, make_ext4_disk, sha256_of
from tests.installer.test_apply_loop import lab  # noqa: F401  (the fixture)

pytestmark = pytest.mark.integration


def run_auto(lab, tmp_path, answers: dict):  # noqa: F811
    creds = tmp_path / "creds"
    creds.mkdir(exist_ok=True)
    (creds / "hypercore.answers").write_text(yaml.safe_dump(answers))
    (tmp_path / "cmdline").write_text("console=ttyS0,115200 rw\n")
    return run_cli("auto", "--cmdline", tmp_path / "cmdline", "--credentials-dir", creds,
                   "--label", "HCT" + uuid.uuid4().hex[:8], "--source-disk", lab.source,
                   "--workdir", lab.workdir)


def _doc(lab, **changes) -> dict:  # noqa: F811
    doc = yaml.safe_load(lab.answers().read_text())
    doc.update(changes)
    return doc


def test_auto_installs_unattended_once(lab, tmp_path):  # noqa: F811
    proc = run_auto(lab, tmp_path, _doc(lab, after_install="none"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert out.index("Answer file: ") < out.index(f"Install Hypercore on {lab.target}") < out.index("[1/")
    assert f"Hypercore is installed on {lab.target}" in out
    assert out.rstrip().endswith(f"after_install: none: staying in the live system. Remove the USB stick, then "
                                 f"reboot into the installed system on {lab.target}.")
    marker = json.loads((lab.workdir / "auto.json").read_text())
    assert marker["state"] == "installed" and marker["target"] == lab.target
    assert marker["from"] == str(tmp_path / "creds" / "hypercore.answers")
    copy = lab.workdir / "auto-answers.yaml"
    assert stat.S_IMODE(os.stat(copy).st_mode) == 0o600
    assert yaml.safe_load(copy.read_text())["after_install"] == "none"
    assert (lab.workdir / "auto-status.txt").read_text().startswith(f"Hypercore was installed on {lab.target}")

    # The same live boot: a second unattended install is refused, nothing is written.
    before = sha256_of(lab.files["target"]), sha256_of(lab.files["osd"])
    again = run_auto(lab, tmp_path, _doc(lab, after_install="none"))
    assert again.returncode == 1 and again.stdout == ""
    assert "an unattended install already ran in this live boot" in again.stderr
    assert (sha256_of(lab.files["target"]), sha256_of(lab.files["osd"])) == before


def test_a_refused_plan_leaves_no_marker(lab, tmp_path):  # noqa: F811
    old = make_ext4_disk(tmp_path, "old-target.img", 9 * GiB)
    with loop_device(old) as dev:
        before = sha256_of(old)
        proc = run_auto(lab, tmp_path, _doc(lab, target={"path": dev, "root_size": "4G"}, wipe=False))
        assert proc.returncode == 1
        assert f"target ({dev}): holds data: an ext4 filesystem labelled 'olddata'" in proc.stderr
        assert "\n+ " not in proc.stdout
        assert sha256_of(old) == before
    assert not (lab.workdir / "auto.json").exists()          # nothing was written: auto may run again
    status = (lab.workdir / "auto-status.txt").read_text()
    assert status.startswith("The unattended install stopped:\n") and "holds data" in status


def test_a_crashed_unattended_install_is_not_restarted_but_resumes_by_hand(lab, tmp_path):  # noqa: F811
    env = cli_env()
    env["HYPERCORE_INSTALL_CRASH_AFTER"] = "grow-root"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "hypercore.answers").write_text(yaml.safe_dump(_doc(lab, after_install="none")))
    (tmp_path / "cmdline").write_text("quiet\n")
    crashed = run_cli("auto", "--cmdline", tmp_path / "cmdline", "--credentials-dir", creds, "--label", "HCTNONE",
                      "--source-disk", lab.source, "--workdir", lab.workdir, env=env)
    assert crashed.returncode == -9
    assert json.loads((lab.workdir / "auto.json").read_text())["state"] == "started"

    again = run_auto(lab, tmp_path, _doc(lab, after_install="none"))
    assert again.returncode == 1 and again.stdout == ""
    copy = lab.workdir / "auto-answers.yaml"
    assert "an unattended install already started in this live boot" in again.stderr
    assert f"resume it on the serial console with: hypercore-install apply {copy} --yes" in again.stderr

    resumed = run_cli("apply", copy, "--yes", "--source-disk", lab.source, "--workdir", lab.workdir)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "(5 of 16 steps done)" in resumed.stdout
