"""Bad input: one clear line (plus a hint), exit status 1, and nothing changed.

These run the real commands (and qemu-img) as subprocesses; no VM is booted.
"""

from __future__ import annotations

import os

import pytest

import shutil
import tempfile
from pathlib import Path

from hypercore import vms
from hypercore.qemu_argv import disk_blockdev
from hypercore.run import run
from hypercore.state import StateDir
from tests.vm.conftest import CLI, tree


def _one_error(p, prog: str, text: str) -> None:
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 1, p.stderr
    assert lines[0].startswith(f"{prog}: ") and text in lines[0], lines
    assert len(lines) <= 2 and all(ln.startswith("  hint: ") for ln in lines[1:]), lines
    assert "Traceback" not in p.stderr and p.stdout == ""


@pytest.fixture(scope="module")
def world_dir():
    """A state dir with one stopped VM on a qcow2 disk and a raw-disk VM (shared: every case is refused)."""
    state = Path(tempfile.mkdtemp(prefix="hc-", dir="/tmp"))
    cli = CLI(state)
    cli("create-vm", "web", "64", "1", "new:16M")
    raw = state / "raw.img"
    run(["qemu-img", "create", "-q", "-f", "raw", str(raw), "16M"])
    cli("create-vm", "rawvm", "64", "1", str(raw))
    (state / "a.iso").write_bytes(b"\0" * 2048)
    run(["qemu-img", "create", "-q", "-f", "vmdk", str(state / "d.vmdk"), "16M"])
    # A qcow2 in the state dir whose backing file is a host file; a link out of it; a file in the share.
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", str(state / "evil.qcow2")])
    (state / "link.raw").symlink_to("/etc/passwd")
    (state / "shared").mkdir()
    run(["qemu-img", "create", "-q", "-f", "raw", str(state / "shared" / "s.raw"), "1M"])
    yield state
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def world(world_dir):
    return world_dir


@pytest.fixture
def wcli(world_dir):
    return CLI(world_dir)


CASES = [
    (("create-vm", "bad,name", "64", "1", "new:16M"), "invalid VM name 'bad,name'"),
    (("create-vm", "../etc", "64", "1", "new:16M"), "invalid VM name '../etc'"),
    (("create-vm", "Web", "64", "1", "new:16M"), "invalid VM name 'Web'"),
    (("create-vm", "web", "64", "1", "new:16M"), "VM web already exists"),
    (("create-vm", "big", "99999999", "1", "new:16M"), "more than this host has"),
    (("create-vm", "many", "64", str((os.cpu_count() or 1) + 1), "new:16M"), "CPUs is more than this host has"),
    (("create-vm", "noiso", "64", "1", "new:16M", "/nonexistent/x.iso"), "ISO image /nonexistent/x.iso does not exist"),
    (("create-vm", "nodisk", "64", "1", "/nonexistent/d.qcow2"), "disk image /nonexistent/d.qcow2 does not exist"),
    (("create-vm", "vmdk", "64", "1", "{state}/d.vmdk"), "is a vmdk image"),
    (("create-vm", "badsize", "64", "1", "new:12X"), "invalid size '12X'"),
    # QEMU opens disks as root: no host file is a disk, only images in the state dir and unused whole disks.
    (("create-vm", "pw", "64", "1", "/etc/passwd"), "disk image /etc/passwd is not in the state directory"),
    (("create-vm", "pw", "64", "1", "{state}/link.raw"), "disk image {state}/link.raw is not in the state directory"),
    (("create-vm", "pw", "64", "1", "{state}/evil.qcow2"), "backing file /etc/passwd of disk image"),
    (("create-vm", "pw", "64", "1", "{state}/shared/s.raw"), "is not in the state directory"),
    (("create-vm", "pw", "64", "1", "dev:/etc/passwd"), "invalid block device 'dev:/etc/passwd'"),
    (("create-vm", "pw", "64", "1", "dev:/dev/null"), "/dev/null is not a block device"),
    (("create-vm", "badrbd", "64", "1", "rbd:vm-pool/x:conf=relative"), "invalid RBD option"),
    (("create-vm", "k", "64", "1", "new:16M", "--kernel", "/nonexistent/vmlinuz"), "kernel /nonexistent/vmlinuz does not exist"),
    (("boot-vm", "ghost"), "no VM named 'ghost'"),
    (("boot-vm", "bad,name"), "invalid VM name"),
    (("hypercore", "vm", "stop", "web"), "VM web is not running"),
    (("hypercore", "vm", "stats", "web"), "VM web is not running"),
    (("hypercore", "vm", "console", "web"), "cannot open the console of VM web"),
    (("hypercore", "vm", "delete", "ghost"), "no VM named 'ghost'"),
    (("hypercore", "vm", "snapshot", "rollback", "web", "nope"), "VM web has no snapshot 'nope'"),
    (("hypercore", "vm", "snapshot", "delete", "web", "nope"), "VM web has no snapshot 'nope'"),
    (("hypercore", "vm", "snapshot", "create", "web", "bad/snap"), "invalid snapshot name"),
    (("hypercore", "vm", "snapshot", "create", "rawvm", "s1"), "is a raw file: raw files have no snapshots"),
    (("hypercore", "vm", "clone", "ghost", "new1"), "no VM or image named 'ghost'"),
    (("hypercore", "vm", "clone", "web@nope", "new1"), "a qcow2 internal snapshot cannot back a linked clone"),
    (("hypercore", "vm", "clone", "web", "rawvm"), "VM rawvm already exists"),
    (("hypercore", "vm", "clone", "web", "bad,new"), "invalid VM name"),
    (("hypercore", "image", "import", "/nonexistent.qcow2", "img"), "disk image /nonexistent.qcow2 does not exist"),
    (("hypercore", "image", "import", "{state}/d.vmdk", "Bad/Name"), "invalid image name"),
    (("hypercore", "image", "delete", "ghost"), "no image named 'ghost'"),
]


@pytest.mark.parametrize("args,text", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_refused_and_nothing_changed(wcli, world, args, text):
    args = tuple(a.format(state=world) for a in args)
    before = tree(world)
    p = wcli(*args, ok=False)
    _one_error(p, args[0], text.format(state=world))
    assert tree(world) == before


def test_missing_rbd_image_or_tool(wcli, world):
    before = tree(world)
    p = wcli("create-vm", "ceph", "64", "1", "rbd:vm-pool/does-not-exist", ok=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    first = p.stderr.splitlines()[0]
    assert ("required tool 'rbd' is not installed" in first or "does not exist" in first
            or "rbd failed" in first), first
    assert tree(world) == before


def test_clone_of_vm_with_internal_snapshots_is_refused(cli, state):
    cli("create-vm", "web", "64", "1", "new:16M")
    cli.hc("vm", "snapshot", "create", "web", "s1")
    before = tree(state)
    p = cli.hc("vm", "clone", "web", "web2", ok=False)
    _one_error(p, "hypercore", "has internal snapshots (s1)")
    assert tree(state) == before


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/loop-control"), reason="needs root and loop devices")
def test_a_whole_unused_block_device_only(cli, state, tmp_path):
    from tests.installer.loopdisks import MiB, loop_device, part, sparse_file
    with loop_device(sparse_file(tmp_path / "d.img", 32 * MiB)) as dev:
        out = cli("create-vm", "dv", "64", "1", f"dev:{dev}").stdout
        assert f"disk: whole block device {dev}" in out
        disk = vms.load(StateDir(state), "dv").disks[0]
        assert (disk.path, disk.format) == (dev, "raw")
        assert f"file.driver=host_device,file.filename={dev}" in disk_blockdev(disk, "disk0")
        before = tree(state)
        _one_error(cli("create-vm", "dv2", "64", "1", f"dev:{dev}", ok=False), "create-vm",
                   f"block device {dev} is already the disk of VM dv")
        run(["sfdisk", "-q", dev], input="label: gpt\n,\n")
        run(["partx", "-u", dev], check=False)
        run(["mkfs.ext4", "-q", part(dev, 1)])
        mnt = tmp_path / "mnt"
        mnt.mkdir()
        run(["mount", part(dev, 1), str(mnt)])
        try:
            _one_error(cli("create-vm", "dv3", "64", "1", f"dev:{dev}", ok=False), "create-vm",
                       f"block device {dev} is in use: {Path(part(dev, 1)).name} on {mnt}")
            _one_error(cli("create-vm", "dv3", "64", "1", f"dev:{part(dev, 1)}", ok=False), "create-vm",
                       "is a partition, not a whole disk")
        finally:
            run(["umount", str(mnt)])
        assert tree(state) == before


def test_argument_types_are_checked(wcli):
    p = wcli("create-vm", "x", "lots", "1", "new:1G", ok=False)
    assert p.returncode == 2 and "RAM_MB must be a whole number, not 'lots'" in p.stderr
