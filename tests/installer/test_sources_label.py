"""The HYPERCORE filesystem source on a real loop device: a GPT disk whose
second partition is ext4 labelled HYPERCORE holding the answer file (as an
operator adds to the USB stick). Found, mounted read-only, left untouched and
unmounted; and `hypercore-install auto --dry-run` installing from it."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

import pytest

from tests.installer.conftest import EXAMPLES, MACHINES
from hypercore.errors import UserError
from hypercore.run import run
from hypercore_installer import sources
from hypercore_installer.sources import Settings

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def _needs_loop_devices():
    if os.geteuid() != 0 or not shutil.which("losetup") or not os.path.exists("/dev/loop-control"):
        pytest.skip("needs root and loop devices")


@contextlib.contextmanager
def labelled_disk(tmp_path: Path, files: dict[str, bytes], label: str = "HYPERCORE"):
    """A 48 MiB GPT disk on a loop device: p1 unformatted, p2 ext4 `label`
    made with `files` in it. Yields the partition's device; always detached."""
    content = tmp_path / "content"
    content.mkdir()
    for name, data in files.items():
        (content / name).write_bytes(data)
    image = tmp_path / "stick.img"
    with open(image, "wb") as f:
        f.truncate(48 * MiB)
    run(["sfdisk", "--quiet", str(image)], input="label: gpt\n,8M\n,\n")
    dev = run(["losetup", "--find", "--show", "--partscan", str(image)]).stdout.strip()
    try:
        run(["partx", "-a", dev], check=False)       # this host's kernel does not scan partitions itself
        part = f"{dev}p2"
        run(["mkfs.ext4", "-q", "-F", "-L", label, "-d", str(content), part])
        yield part
    finally:
        with open("/proc/self/mountinfo") as mi:
            points = [line.split()[4] for line in mi if f" {dev}p" in line]
        for point in points:
            run(["umount", "-l", point], check=False)
        run(["partx", "-d", dev], check=False)
        run(["losetup", "-d", dev], check=False)


def _sha(dev: str) -> str:
    with open(dev, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _mounts_of(dev: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if dev in line or "hypercore-answers-" in line]


@pytest.fixture
def free_label():
    _needs_loop_devices()
    if sources.labelled("HYPERCORE"):
        pytest.skip("this host already has a filesystem labelled HYPERCORE")


def test_label_found_read_only_and_unmounted(tmp_path, free_label):
    text = (EXAMPLES / "single-node-answers.yaml").read_bytes()
    with labelled_disk(tmp_path, {"hypercore-answers.yaml": text, "answers.yaml": b"other"}) as part:
        before = _sha(part)
        lines: list[str] = []
        found = sources.from_label(Settings(), out=lines.append)
        assert found.data == text
        assert found.where == f"{part}:/hypercore-answers.yaml"
        assert found.how == "from the filesystem labelled HYPERCORE"
        assert lines == [f"  {part} holds both hypercore-answers.yaml and answers.yaml: using hypercore-answers.yaml"]
        assert _mounts_of(part) == []                       # unmounted again
        assert not list(Path("/tmp").glob("hypercore-answers-*"))
        assert _sha(part) == before                         # mounted read-only: not one byte changed


def test_label_in_lower_case_with_answers_yaml(tmp_path, free_label):
    with labelled_disk(tmp_path, {"answers.yaml": b"hostname: n1\n"}, label="hypercore") as part:
        found = sources.from_label(Settings())
        assert (found.where, found.data) == (f"{part}:/answers.yaml", b"hostname: n1\n")


def test_label_without_the_file_lists_what_it_holds(tmp_path, free_label):
    with labelled_disk(tmp_path, {"hypercore-answers.yaml.txt": b"x", "README": b"y"}) as part:
        with pytest.raises(UserError) as e:
            sources.from_label(Settings())
        assert e.value.message == (f"the filesystem labelled HYPERCORE on {part} holds no hypercore-answers.yaml "
                                   "or answers.yaml (it holds: README, hypercore-answers.yaml.txt, lost+found)")
        assert "check that no .txt was added to the name" in e.value.hint
        assert _mounts_of(part) == []


def test_auto_dry_run_from_the_labelled_filesystem(tmp_path, free_label, cli):
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("console=ttyS0\n")
    (tmp_path / "creds").mkdir()
    text = (EXAMPLES / "single-node-answers.yaml").read_bytes()
    with labelled_disk(tmp_path, {"hypercore-answers.yaml": text}) as part:
        code, out, err = cli("auto", "--dry-run", "--machine", MACHINES / "workstation-nvme-usb.json",
                             "--cmdline", cmdline, "--credentials-dir", tmp_path / "creds",
                             "--workdir", tmp_path / "work")
    assert code == 0, err
    assert (f"Answer file: {part}:/hypercore-answers.yaml (from the filesystem labelled HYPERCORE; "
            f"sha256 {hashlib.sha256(text).hexdigest()})") in out
    assert "Install Hypercore on /dev/nvme0n1" in out
    assert "Dry run complete; nothing was changed." in out
    assert out.rstrip().endswith("Dry run: would reboot now (after_install: reboot).")
    assert not (tmp_path / "work").exists()            # a dry run writes no state
