"""Real QEMU (TCG here, KVM where it works): tiny guests run through the VM services.

Run the whole suite under the machine's QEMU lock:
    flock /tmp/hypercore-qemu.lock /usr/bin/python3 -m pytest tests/vm
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import time
from pathlib import Path

import pytest

from hypercore.accel import detect
from hypercore.run import run
from tests.vm import guest
from tests.vm.guest import READY, GuestShell, wait_for_console

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="QEMU is not installed"),
]

ONE = "HCDATA-one::::::"
TWO = "HCDATA-two::::::"


@pytest.fixture(scope="session")
def test_guest(tmp_path_factory, vm_user) -> tuple[Path, Path]:
    kdir = guest.kernel()
    initrd = guest.initramfs(kdir, tmp_path_factory.mktemp("guest") / "initrd.img")
    return kdir / "vmlinuz", initrd


def create(cli, test_guest, name: str, *extra: str, disk: str = "new:64M", memory: str = "256"):
    vmlinuz, initrd = test_guest
    return cli("create-vm", name, memory, "1", disk, "--kernel", str(vmlinuz), "--initrd", str(initrd),
               "--append", guest.CMDLINE, *extra).stdout


def boot(cli, state: Path, name: str) -> tuple[str, Path, int]:
    log = state / "vms" / name / "run" / "console.log"
    offset = log.stat().st_size if log.exists() else 0
    out = cli("boot-vm", name).stdout
    wait_for_console(log, READY, timeout=120, start=offset)
    return out, log, offset


def shell(state: Path, name: str) -> GuestShell:
    return GuestShell(state / "vms" / name / "run" / "console.sock", timeout=30)


def uids(pid: int) -> list[int]:
    """Real, effective, saved and filesystem uid of a process."""
    line = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("Uid:"))
    return [int(u) for u in line.split()[1:]]


def qemu_running(state: Path) -> list[int]:
    """QEMU and virtiofsd processes of this state dir still alive."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes()
            except OSError:
                continue
            argv0 = cmd.split(b"\0", 1)[0]
            if (b"qemu-system" in argv0 or b"virtiofsd" in argv0) and str(state).encode() in cmd:
                out.append(int(p.name))
    return out


def test_lifecycle_snapshot_rollback_clone(cli, state, test_guest):
    accel = detect("auto").name.upper()
    out = create(cli, test_guest, "tiny")
    assert "new qcow2 file" in out and "not on Ceph" in out

    out, log, _ = boot(cli, state, "tiny")
    assert f"{accel}:" in out and "detached process" in out

    # Running: a second start is refused, show names the accelerator, stats come over QMP.
    p = cli("boot-vm", "tiny", ok=False)
    assert "boot-vm: VM tiny is already running" in p.stderr
    show = cli.hc("vm", "show", "tiny").stdout
    assert "state         running" in show and f"accel         {accel}" in show
    s = json.loads(cli.hc("vm", "stats", "tiny", "--json", "--interval", "0.5").stdout)
    assert s["status"] == "running" and s["accel"] == accel.lower() and len(s["vcpus"]) == 1
    assert s["memory"]["base_bytes"] == 256 << 20 and s["memory"]["rss_bytes"] > 0
    assert [d["disk"] for d in s["disks"]] == ["disk0"] and s["disks"][0]["rd_ops"] > 0
    assert "cpu:" in cli.hc("vm", "stats", "tiny", "--interval", "0.2").stdout
    assert "tiny  running" in cli.hc("vm", "list").stdout
    p = cli.hc("vm", "delete", "tiny", ok=False)
    assert "VM tiny is running: cannot delete it while it runs" in p.stderr
    p = cli.hc("vm", "clone", "tiny", "tiny2", ok=False)
    assert "VM tiny is running: cannot make a linked clone of its file disks" in p.stderr
    assert not (state / "vms" / "tiny2").exists()

    # A live snapshot, then a change, then rollback is refused while running.
    sh = shell(state, "tiny")
    sh.succeed(f"printf '{ONE}' | dd of=/dev/vda bs=16 count=1 conv=fsync 2>/dev/null; sync")
    assert "running VM tiny" in cli.hc("vm", "snapshot", "create", "tiny", "s1").stdout
    sh.succeed(f"printf '{TWO}' | dd of=/dev/vda bs=16 count=1 conv=fsync 2>/dev/null; sync")
    p = cli.hc("vm", "snapshot", "rollback", "tiny", "s1", ok=False)
    assert "VM tiny is running: cannot roll back a snapshot while it runs" in p.stderr
    assert sh.succeed("head -c 16 /dev/vda") == TWO
    sh.close()

    # The console command, fed from a pipe.
    out = cli.hc("vm", "console", "tiny", input="echo console-$((40+2))\n").stdout
    assert "console-42" in out

    # Stop: the guest's acpid powers off on the ACPI power button.
    t = time.monotonic()
    out = cli.hc("vm", "stop", "tiny", "--timeout", "60").stdout
    assert "powered off by the guest (ACPI power button" in out, out
    assert time.monotonic() - t < 30 and not qemu_running(state)
    assert "ACPI power button, powering off" in log.read_text(errors="replace")

    # Rollback (stopped) brings back what the disk held at s1.
    assert "rolled VM tiny back to snapshot s1" in cli.hc("vm", "snapshot", "rollback", "tiny", "s1").stdout
    _, log, offset = boot(cli, state, "tiny")
    assert f"disk {ONE}" in log.read_bytes()[offset:].decode(errors="replace")

    # A guest that ignores the power button is killed after the timeout.
    sh = shell(state, "tiny")
    sh.succeed("killall acpid")
    sh.close()
    out = cli.hc("vm", "stop", "tiny", "--timeout", "3").stdout
    assert "did not power off within 3 s after the ACPI power button: killed" in out, out
    assert not qemu_running(state)

    # Linked clone: a backing file, no data copied; the clone boots and sees the data.
    cli.hc("vm", "snapshot", "delete", "tiny", "s1")
    out = cli.hc("vm", "clone", "tiny", "tiny2").stdout
    assert "cloned VM tiny to VM tiny2" in out
    clone_disk = state / "vms" / "tiny2" / "disk0.qcow2"
    chain = json.loads(run(["qemu-img", "info", "--output=json", "--backing-chain", str(clone_disk)]).stdout)
    assert len(chain) == 2 and chain[1]["filename"].startswith(str(state / "bases"))
    assert clone_disk.stat().st_blocks * 512 < 1 << 20
    _, log2, offset2 = boot(cli, state, "tiny2")
    assert f"disk {ONE}" in log2.read_bytes()[offset2:].decode(errors="replace")
    assert "forced off" in cli.hc("vm", "stop", "tiny2", "--force").stdout
    assert not qemu_running(state)

    cli.hc("vm", "delete", "tiny")
    cli.hc("vm", "delete", "tiny2")
    assert list((state / "bases").iterdir()) == []
    assert "no VMs" in cli.hc("vm", "list").stdout


@pytest.mark.parametrize("transport,fstype", [("virtiofs", "virtiofs"), ("9p", "9p")])
def test_two_guests_exchange_a_file(cli, state, test_guest, vm_user, transport, fstype):
    for name in ("a", "b"):
        create(cli, test_guest, name, "--shared", transport, "--network", "none", disk="new:16M", memory="192")
    cli("boot-vm", "a")
    cli("boot-vm", "b")
    for name in ("a", "b"):
        wait_for_console(state / "vms" / name / "run" / "console.log", READY, timeout=180)
    a, b = shell(state, "a"), shell(state, "b")
    try:
        for sh in (a, b):
            assert f"hypercore_share /shared {fstype} " in sh.succeed("grep ' /shared ' /proc/mounts")
        a.succeed("echo hello-from-a > /shared/a.txt && sync")
        assert b.succeed("for i in 1 2 3 4 5; do [ -f /shared/a.txt ] && break; sleep 1; done; cat /shared/a.txt") \
            == "hello-from-a\n"
        b.succeed("echo hello-from-b > /shared/b.txt && sync")
        assert a.succeed("for i in 1 2 3 4 5; do [ -f /shared/b.txt ] && break; sleep 1; done; cat /shared/b.txt") \
            == "hello-from-b\n"
        # Neither QEMU nor virtiofsd runs as root; the shared folder is the VMs' user's, 0770.
        procs = qemu_running(state)
        assert len(procs) >= (4 if transport == "virtiofs" else 2)
        assert all(0 not in uids(pid) for pid in procs), {pid: uids(pid) for pid in procs}
        st = (state / "shared").stat()
        assert stat.S_IMODE(st.st_mode) == 0o770
        if os.geteuid() == 0:
            assert (st.st_uid, st.st_gid) == (vm_user.uid, vm_user.gid)
        # The guest's root makes a block device node and a setuid-root file in the share:
        # on the host neither is one (9p: xattrs of plain files; virtiofs: no mknod, owner hypercore-vm).
        a.run("mknod /shared/blk b 8 0")
        a.succeed("echo x > /shared/suid && chown 0:0 /shared/suid && chmod 4755 /shared/suid && sync")
        blk, suid = (state / "shared" / "blk"), (state / "shared" / "suid").stat()
        assert not (blk.exists() and stat.S_ISBLK(blk.stat().st_mode))
        assert not (suid.st_uid == 0 and suid.st_mode & stat.S_ISUID), oct(suid.st_mode)
        if transport == "9p":
            assert os.getxattr(state / "shared" / "suid", "user.virtfs.mode")
            assert "rws" in a.succeed("ls -l /shared/suid")  # the guest still sees what it asked for
            # The original Hypercore's mount command works unchanged (a 9p channel mounts once).
            out = b.succeed("umount /shared && mount -t 9p -o trans=virtio,version=9p2000.L hypercore_share /shared"
                            " && cat /shared/a.txt")
            assert out == "hello-from-a\n"
        # What `systemctl stop hypercore-vm-a` does: SIGTERM to the runner, which presses
        # the ACPI power button; the runner then stops virtiofsd and removes its sockets.
        a.close()
        run_dir = state / "vms" / "a" / "run"
        os.kill(int((run_dir / "runner.pid").read_text()), signal.SIGTERM)
        deadline = time.monotonic() + 60
        while (run_dir / "runner.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not (run_dir / "runner.pid").exists() and not (run_dir / "qmp.sock").exists()
        assert "SIGTERM: pressing the ACPI power button" in (run_dir / "runner.log").read_text()
        assert "ACPI power button, powering off" in (run_dir / "console.log").read_text(errors="replace")
    finally:
        a.close()
        b.close()
        for name in ("a", "b"):
            cli.hc("vm", "stop", name, "--force", ok=None)
    assert (state / "shared" / "a.txt").read_text() == "hello-from-a\n"
    assert (state / "shared" / "b.txt").read_text() == "hello-from-b\n"
    assert not qemu_running(state)
