"""The journal: resume only the same install on the same disks."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.installer.conftest import EXAMPLES, machine
from hypercore.errors import UserError
from hypercore_installer.apply import StepFailed, execute, open_journal, prepare, stale_mounts
from hypercore_installer.journal import Journal
from hypercore_installer.model import Plan, Step
from hypercore_installer.runner import Runner


def single_node():
    return yaml.safe_load((EXAMPLES / "single-node-answers.yaml").read_text())


def test_fresh_then_resumed(tmp_path):
    answers, m, jp = single_node(), machine("workstation-nvme-usb"), tmp_path / "journal.json"
    fresh = prepare(answers, m, None, jp)
    assert not fresh.resuming and not jp.exists()
    journal = open_journal(fresh, answers, jp)
    assert jp.stat().st_mode & 0o777 == 0o600
    journal.mark_done("copy-image")
    # The disks now look written to; the plan comes from the journal, not a new probe.
    m["disks"][0]["signatures"] = [{"device": "nvme0n1", "type": "gpt", "uuid": None, "label": None, "offset": "0x200"}]
    again = prepare(answers, m, None, jp)
    assert again.resuming and again.plan == fresh.plan
    assert again.journal.done == ["copy-image"]
    assert again.journal.state["ids"] == json.loads(jp.read_text())["ids"]


def test_other_answers_do_not_resume(tmp_path):
    answers, m, jp = single_node(), machine("workstation-nvme-usb"), tmp_path / "journal.json"
    open_journal(prepare(answers, m, None, jp), answers, jp)
    answers["hostname"] = "node9"
    with pytest.raises(UserError) as e:
        prepare(answers, m, None, jp)
    assert "an unfinished install with other answers" in e.value.message and f"rm {jp}" in e.value.hint


def test_a_swapped_or_busy_disk_does_not_resume(tmp_path):
    answers, m, jp = single_node(), machine("workstation-nvme-usb"), tmp_path / "journal.json"
    open_journal(prepare(answers, m, None, jp), answers, jp)
    swapped = machine("workstation-nvme-usb")
    swapped["disks"][1]["serial"] = "OTHER"
    with pytest.raises(UserError) as e:
        prepare(answers, swapped, None, jp)
    assert "/dev/sda is not the ceph osd disk the interrupted install used" in e.value.message
    busy = machine("workstation-nvme-usb")
    busy["disks"][0]["mounts"] = [{"device": "nvme0n1p3", "mountpoint": "/mnt"}]
    with pytest.raises(UserError) as e:
        prepare(answers, busy, None, jp)
    assert "/dev/nvme0n1 (target) is in use: nvme0n1p3 at /mnt" in e.value.message


def test_a_damaged_journal_is_reported(tmp_path):
    jp = tmp_path / "journal.json"
    jp.write_text("{not json")
    with pytest.raises(UserError) as e:
        Journal.load(jp)
    assert "unreadable" in e.value.message and f"rm {jp}" in e.value.hint
    jp.write_text("{}")
    with pytest.raises(UserError):
        Journal.load(jp)


def test_a_failing_step_stops_the_install_and_keeps_the_journal(tmp_path):
    """Real commands: `sync` succeeds, sfdisk on a missing disk fails."""
    plan = Plan(target={"path": "/dev/nonexistent"}, source={"last_number": 3}, disks={},
                steps=(Step("flush", "finish", "flush", False, ("x",), {"target": "x"}),
                       Step("grow-root", "grow-root", "grow", False, ("x",),
                            {"target": str(tmp_path / "no-such-disk"), "number": 3, "sectors": 2048,
                             "root": "x", "esp": "y"}),
                       Step("never", "finish", "never reached", False, ("x",), {"target": "x"})))
    jp = tmp_path / "journal.json"
    journal = Journal.create(jp, {}, plan.to_dict(), {})
    with pytest.raises(StepFailed) as e:
        execute(plan, Runner(out=open("/dev/null", "w")), journal, str(tmp_path))
    assert "step 2/3 (grow-root) failed" in e.value.message and "sfdisk" in e.value.message
    assert f"it resumes at step 2 (journal {jp})" in e.value.hint
    assert json.loads(jp.read_text())["done"] == ["flush"]


def test_an_os_error_in_a_step_is_one_line_and_keeps_the_journal(tmp_path, monkeypatch):
    """A full disk or an I/O error inside a step (here: a real ENOENT from
    open()) stops the install like a failed command: a StepFailed naming the
    step and the path, no traceback, the journal kept for the resume."""
    from hypercore_installer import steps

    def write_somewhere(ctx, p):
        open(p["path"], "wb")

    monkeypatch.setitem(steps.ACTIONS, "finish", write_somewhere)
    missing = tmp_path / "no-such-dir" / "image"
    plan = Plan(target={"path": "/dev/nonexistent"}, source={"last_number": 3}, disks={},
                steps=(Step("write", "finish", "write", False, ("x",), {"path": str(missing)}),))
    jp = tmp_path / "journal.json"
    journal = Journal.create(jp, {}, plan.to_dict(), {})
    with pytest.raises(StepFailed) as e:
        execute(plan, Runner(out=open("/dev/null", "w")), journal, str(tmp_path))
    assert e.value.message == f"step 1/1 (write) failed; steps after it were not run\n  No such file or directory: {missing}"
    assert f"it resumes at step 1 (journal {jp})" in e.value.hint
    assert json.loads(jp.read_text())["done"] == []


def test_stale_mounts_under_the_workdir(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 254:0 / / rw - ext4 /dev/vda rw\n"
        f"40 22 259:2 / {tmp_path}/w/mnt/root rw - ext4 /dev/loop1p3 rw\n"
        f"41 40 259:3 / {tmp_path}/w/mnt/root/var/lib rw - btrfs /dev/loop1p4 rw\n"
        f"42 22 259:3 / {tmp_path}/w/mntx rw - btrfs /dev/loop1p4 rw\n")
    assert stale_mounts(str(tmp_path / "w"), str(info)) == [
        f"{tmp_path}/w/mnt/root/var/lib", f"{tmp_path}/w/mnt/root"]


def test_every_action_declares_its_tools_and_missing_ones_name_the_package(monkeypatch, tmp_path):
    from hypercore_installer.steps import ACTIONS, TOOLS, check_tools
    assert set(TOOLS) == set(ACTIONS)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError) as e:
        check_tools(["fix-boot-references"])
    assert e.value.message == "required tool 'mdir' is not installed"
    assert e.value.hint == "install it: apt-get install mtools"
