"""Which host files and block devices create-vm may give a VM as its disk.

QEMU opens its disks as root (before it drops to hypercore-vm), so a disk
argument decides what of the host a guest reads and writes. Allowed:
  - a qcow2 or raw image file inside the state directory (not in its shared
    folder, which the VMs write), whose backing files are there too;
  - dev:/dev/DISK, a whole block device that nothing uses: no partition of it
    mounted or used as swap, no holders (LVM, RAID, dm-crypt, a Ceph OSD).
Never any other host file: /etc/passwd is a fine "raw image" to qemu-img.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from hypercore.errors import UserError
from hypercore.run import CommandError, run
from hypercore.state import StateDir

SYS_BLOCK = Path("/sys/class/block")


def _inside(path: Path, top: Path) -> bool:
    return path == top or top in path.parents


def check_file(state: StateDir, path: Path, backing: list[str] = ()) -> None:
    """path (and each of its backing files) must be an image inside the state directory."""
    root, shared = state.root.resolve(), state.shared.resolve()
    for p in [str(path), *backing]:
        real = Path(os.path.realpath(p)) if p.startswith("/") else None
        if real is None or not _inside(real, root) or _inside(real, shared):
            what = "disk image" if p == str(path) else f"backing file {p} of disk image"
            raise UserError(f"{what} {path} is not in the state directory {root}: "
                            "a VM's disk file must be an image there",
                            hint="copy the image into the state directory, or import it (hypercore image "
                                 "import FILE NAME, then image:NAME); a whole unused disk is dev:/dev/DISK")


def _holders(name: str) -> list[str]:
    d = SYS_BLOCK / name / "holders"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def check_device(text: str) -> Path:
    """dev:/dev/DISK -> the device, when it is a whole block device nothing uses."""
    path = Path(os.path.realpath(text))
    try:
        mode = path.stat().st_mode
    except OSError:
        raise UserError(f"block device {text} does not exist", hint="list the disks: lsblk -d") from None
    if not stat.S_ISBLK(mode):
        raise UserError(f"{text} is not a block device", hint="give dev:/dev/DISK, e.g. dev:/dev/sdb")
    sysdir = SYS_BLOCK / path.name
    if (sysdir / "partition").exists():
        raise UserError(f"{text} is a partition, not a whole disk",
                        hint="give the whole disk (dev:/dev/sdb, not /dev/sdb1)")
    try:
        tree = json.loads(run(["lsblk", "--json", "--output", "NAME,TYPE,MOUNTPOINTS", str(path)]).stdout)
    except CommandError as e:
        raise UserError(f"cannot inspect {text}: {(e.stderr.strip().splitlines() or ['?'])[-1]}",
                        hint="check it with lsblk") from None
    used, todo = [], list(tree.get("blockdevices", []))
    while todo:
        dev = todo.pop()
        used += [f"{dev['name']} on {m}" for m in (dev.get("mountpoints") or []) if m]
        used += [f"{dev['name']} held by {h}" for h in _holders(dev["name"])]
        todo += [c for c in dev.get("children", []) if c.get("type") == "part"]
    if used:
        raise UserError(f"block device {text} is in use: {', '.join(sorted(set(used)))}",
                        hint="give a disk nothing mounts or holds (lsblk shows them)")
    return path
