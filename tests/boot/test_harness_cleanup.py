"""The harness never leaves QEMU behind: not when a test raises, not when the
test process itself is killed. (shutdown() is tested at the end of
test_image_boots.py, on the machines booted there.)"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.machine import Machine, gone

pytestmark = pytest.mark.boot
TOP = Path(__file__).resolve().parents[2]

CHILD = """
import os, sys, time
sys.path.insert(0, {top!r})
from pathlib import Path
from tests.machine import Machine
m = Machine(Path({image!r}), name="orphan", workdir=Path({work!r}))
with m:
    print(m.process.pid, flush=True)
    if {mode!r} == "raise":
        raise RuntimeError("a failing test")
    time.sleep(600)
"""


@pytest.mark.parametrize("mode", ["raise", "sigkill"])
def test_no_qemu_left_behind(image, tmp_path, mode):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(top=str(TOP), image=str(image),
                                             work=str(tmp_path / "m"), mode=mode)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    qemu_pid = int(child.stdout.readline())
    if mode == "sigkill":
        assert not gone(qemu_pid, timeout=2), "QEMU did not start"
        child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    assert gone(qemu_pid), f"QEMU {qemu_pid} outlived the test process ({mode})"


def test_qemu_that_cannot_start_is_reported_with_its_error(image, tmp_path):
    from tests.machine import MachineError
    m = Machine(image, name="bad", workdir=tmp_path / "m", extra_args=["-device", "no-such-device"])
    try:
        with pytest.raises(MachineError) as e:
            m.start()
    finally:
        m.kill()
    assert "'no-such-device' is not a valid device model name" in str(e.value)
    assert "QEMU running: False" in str(e.value)


def test_a_killed_machine_starts_again(image, tmp_path):
    """What a hard power-off test does: kill(), then start() the same machine
    (same disks): the new QEMU's shell socket, not the dead one's, is used."""
    m = Machine(image, name="restart", workdir=tmp_path / "m")
    try:
        m.start()
        first = m.process.pid
        m.kill()
        assert gone(first)
        m.start()                     # connects to the new shell socket at once (raises if it cannot)
        assert m.is_running() and m.process.pid != first
    finally:
        m.kill()
