"""Disk operations for both backends: Ceph RBD and qcow2/raw files.

choose() picks where new disks go: RBD in vm-pool when Ceph is reachable,
qcow2 files in the state directory otherwise (or as --storage says).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from hypercore import storage_file as sf
from hypercore import storage_rbd as sr
from hypercore.cephuser import default_namespace
from hypercore.definition import Disk, RbdDisk
from hypercore.errors import UserError
from hypercore.state import StateDir

log = logging.getLogger("hypercore.storage")


@dataclass(frozen=True)
class Backend:
    name: str    # rbd | file
    reason: str


def choose(option: str | None = None) -> Backend:
    option = option or os.environ.get("HYPERCORE_STORAGE") or "auto"
    if option not in ("auto", "rbd", "file"):
        raise UserError(f"unknown storage {option!r}", hint="use --storage auto, rbd or file")
    if option == "file":
        return Backend("file", "file storage requested")
    ns = default_namespace()
    ok, why = sr.available(sr.pool_of_new_disks() + (f"/{ns}" if ns else ""))
    if ok:
        return Backend("rbd", why)
    if option == "rbd":
        raise UserError(f"Ceph RBD storage is not available: {why}",
                        hint="check the cluster with 'ceph -s', or use --storage file")
    return Backend("file", f"Ceph is not available: {why}")


def check_exists(disk: Disk) -> None:
    if isinstance(disk, RbdDisk):
        sr.require_image(disk)
    elif disk.is_device:
        if not Path(disk.path).is_block_device():
            raise UserError(f"block device {disk.path} does not exist",
                            hint="attach the disk again or change the VM's disks")
    elif not Path(disk.path).is_file():
        raise UserError(f"disk image {disk.path} does not exist",
                        hint="restore the file or change the VM's disks")


def supports_snapshots(disk: Disk) -> bool:
    return isinstance(disk, RbdDisk) or disk.format == "qcow2"


def snapshot_names(disk: Disk) -> list[str]:
    if isinstance(disk, RbdDisk):
        return [s["name"] for s in sr.snapshots(disk.spec, disk.user, disk.conf)]
    if disk.format != "qcow2":
        return []
    return [s["name"] for s in sf.snapshots(disk.path)]


def snapshot_details(disk: Disk) -> list[dict]:
    """Uniform: [{'name', 'date', 'protected'}]."""
    if isinstance(disk, RbdDisk):
        return [{"name": s["name"], "date": s.get("timestamp", ""),
                 "protected": str(s.get("protected", "false")) == "true"}
                for s in sr.snapshots(disk.spec, disk.user, disk.conf)]
    if disk.format != "qcow2":
        return []
    import time
    return [{"name": s["name"], "protected": False,
             "date": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.get("date-sec", 0)))}
            for s in sf.snapshots(disk.path)]


def snapshot_offline(action: str, disk: Disk, name: str) -> None:
    """create | apply | delete on a disk no QEMU has open."""
    if isinstance(disk, RbdDisk):
        rbd_action = {"create": "create", "apply": "rollback", "delete": "rm"}[action]
        sr.rbd(sr.snap_argv(rbd_action, disk.spec, name, disk.user, disk.conf))
    else:
        sf.snapshot(action, Path(disk.path), name)


def delete(disk: Disk) -> None:
    """Remove a disk hypercore created (owned); the caller checked there are no clones."""
    if isinstance(disk, RbdDisk):
        info = sr.image_info(disk.spec, disk.user, disk.conf)
        if info is None:
            return
        for snap in sr.snapshots(disk.spec, disk.user, disk.conf):
            if str(snap.get("protected")) == "true":
                sr.rbd(sr.snap_argv("unprotect", disk.spec, snap["name"], disk.user, disk.conf))
        sr.rbd(sr.snap_argv("purge", disk.spec, user=disk.user, conf=disk.conf))
        sr.rbd(sr.rm_argv(disk.spec, disk.user, disk.conf))
        _drop_clone_snapshot(disk, info.get("parent"))
    else:
        Path(disk.path).unlink(missing_ok=True)


def _drop_clone_snapshot(disk: RbdDisk, parent: dict | None) -> None:
    """A 'clone-NAME' snapshot hypercore made for this clone goes with its last child."""
    if not parent or not str(parent.get("snapshot", "")).startswith("clone-"):
        return
    spec = f"{parent['pool']}/{parent['image']}"
    if sr.children(spec, parent["snapshot"], disk.user, disk.conf):
        return
    sr.rbd(sr.snap_argv("unprotect", spec, parent["snapshot"], disk.user, disk.conf))
    sr.rbd(sr.snap_argv("rm", spec, parent["snapshot"], disk.user, disk.conf))


def rbd_clone_blockers(disk: RbdDisk) -> list[str]:
    """Children of any of this image's snapshots: they keep it from being deleted."""
    found = []
    for snap in sr.snapshots(disk.spec, disk.user, disk.conf):
        if str(snap.get("protected")) == "true":
            found += sr.children(disk.spec, snap["name"], disk.user, disk.conf)
    return found


def backing_files(disk: Disk) -> list[str]:
    """Every backing file below a file disk (empty for RBD and plain images)."""
    if isinstance(disk, RbdDisk) or not Path(disk.path).exists():
        return []
    return [layer["filename"] for layer in sf.chain(disk.path)[1:]]


def gc_bases(state: StateDir, in_use: set[str]) -> list[Path]:
    """Remove frozen clone bases nothing uses any more; return what went."""
    removed = []
    if not state.bases.is_dir():
        return removed
    for base in sorted(state.bases.iterdir()):
        if str(base) not in in_use:
            base.chmod(0o644)
            base.unlink()
            removed.append(base)
    return removed
