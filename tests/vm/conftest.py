"""Fixtures for the VM-services tests: a short state dir and the hypercore CLIs as subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
ENTRY = {"hypercore": "main", "create-vm": "create_vm_main", "boot-vm": "boot_vm_main"}


class CLI:
    """Runs hypercore, create-vm and boot-vm as the user would (a new process each)."""

    def __init__(self, state: Path):
        self.state = state
        self.env = dict(os.environ, HYPERCORE_STATE_DIR=str(state), HYPERCORE_STORAGE="file",
                        PYTHONPATH=str(TOP))

    def __call__(self, prog: str, *args: str, ok: bool | None = True, timeout: float = 120,
                 input: str | None = None) -> subprocess.CompletedProcess:
        code = f"import sys; from hypercore.cli import {ENTRY[prog]} as m; sys.exit(m(sys.argv[1:]))"
        p = subprocess.run([sys.executable, "-c", code, *args], env=self.env, capture_output=True,
                           text=True, timeout=timeout, input=input,
                           stdin=subprocess.DEVNULL if input is None else None)
        if ok is True and p.returncode != 0:
            raise AssertionError(f"{prog} {' '.join(args)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
        if ok is False and p.returncode == 0:
            raise AssertionError(f"{prog} {' '.join(args)} should have failed:\n{p.stdout}{p.stderr}")
        return p

    def hc(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self("hypercore", *args, **kw)


@pytest.fixture
def state():
    # Short: UNIX socket paths under it must stay below 108 bytes.
    d = Path(tempfile.mkdtemp(prefix="hc-", dir="/tmp"))
    try:
        yield d
    finally:
        _kill_leftovers(d)
        shutil.rmtree(d, ignore_errors=True)


def _kill_leftovers(state: Path) -> None:
    """Never leave a QEMU behind, whatever the test did."""
    import signal
    for pidfile in list(state.glob("vms/*/run/qemu.pid")) + list(state.glob("vms/*/run/runner.pid")):
        try:
            pid = int(pidfile.read_text().split()[0])
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if str(state).encode() in cmd:
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def cli(state) -> CLI:
    return CLI(state)


@pytest.fixture(scope="session")
def vm_user():
    """The user QEMU and virtiofsd drop to (root only), made from the image's own sysusers file."""
    import pwd
    from hypercore import vmuser
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(vmuser.NAME)
    except KeyError:
        conf = TOP / "overlays" / "hypercore" / vmuser.SYSUSERS.lstrip("/")
        subprocess.run(["systemd-sysusers", str(conf)], check=True, capture_output=True)
    return vmuser.lookup()


def tree(root: Path) -> dict:
    """Everything under root with size and mtime: to assert that nothing changed."""
    out = {}
    for p in sorted(root.rglob("*")):
        if "locks" in p.relative_to(root).parts:
            continue
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out
