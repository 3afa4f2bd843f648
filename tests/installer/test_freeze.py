"""The live root stays unchanged while the installer copies it: Runner.frozen
freezes the mounted filesystems of the source disk (a real ext4 on a loop
device here), writers wait until the copy is done, and a crash of the
installer (SIGKILL) unfreezes them too (the freeze guard sees its stdin
close)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hypercore_installer.runner import Runner
from tests.installer.loopdisks import MiB, loop_device, sparse_file

pytestmark = pytest.mark.integration
TOP = Path(__file__).resolve().parents[2]


@pytest.fixture
def mounted_ext4(tmp_path, monkeypatch):
    # The guard runs as `python3 -m hypercore_installer.freezeguard` (installed in the image).
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(str(TOP / d) for d in ("", "installer", "netboot")))
    img = sparse_file(tmp_path / "live.img", 64 * MiB)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(img)], check=True)
    where = tmp_path / "live"
    where.mkdir()
    with loop_device(img) as dev:
        subprocess.run(["mount", dev, str(where)], check=True)
        try:
            yield dev, where
        finally:
            subprocess.run(["fsfreeze", "--unfreeze", str(where)], capture_output=True)
            subprocess.run(["umount", str(where)], check=True)


def writer(where: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen(["touch", str(where / name)])


def test_writers_wait_while_the_copy_runs_and_go_on_after(mounted_ext4):
    dev, where = mounted_ext4
    with Runner(out=open(os.devnull, "w")).frozen(dev) as points:
        assert points == [str(where)]
        w = writer(where, "during")
        time.sleep(1.5)
        assert w.poll() is None, "a write went through while the filesystem was frozen"
    assert w.wait(timeout=30) == 0
    assert (where / "during").exists()


def test_a_killed_installer_leaves_nothing_frozen(mounted_ext4):
    dev, where = mounted_ext4
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from hypercore_installer.runner import Runner\n"
         "held = Runner().frozen(sys.argv[1])\nheld.__enter__()\n"
         "print('frozen', flush=True)\n"
         "time.sleep(600)\n", dev], stdout=subprocess.PIPE)
    assert holder.stdout.readline() == b"frozen\n"
    w = writer(where, "after-crash")
    time.sleep(1.5)
    assert w.poll() is None
    holder.kill()
    holder.wait()
    assert w.wait(timeout=30) == 0


def test_a_disk_with_nothing_mounted_is_not_frozen(tmp_path):
    img = sparse_file(tmp_path / "plain.img", 16 * MiB)
    with loop_device(img) as dev, Runner(out=open(os.devnull, "w")).frozen(dev) as points:
        assert points == []
