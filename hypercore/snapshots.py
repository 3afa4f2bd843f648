"""VM snapshots: one snapshot name across all of a VM's disks.

RBD disks: rbd snap (works live, crash-consistent; the guest's filesystems are
frozen through the agent when one answers). qcow2 disks: internal snapshots,
with qemu-img snapshot when the VM is stopped and over QMP
(blockdev-snapshot-internal-sync) while it runs. Rollback only when stopped.
"""

from __future__ import annotations

import contextlib

from hypercore import names, rbd_claims, storage, supervisor, vms
from hypercore import storage_rbd as sr
from hypercore.definition import FileDisk, RbdDisk, VMDefinition
from hypercore.errors import UserError
from hypercore.qmp import QMP, GuestAgent
from hypercore.state import StateDir


def _check_disks(defn: VMDefinition) -> None:
    if not defn.disks:
        raise UserError(f"VM {defn.name} has no disks to snapshot")
    for i, disk in enumerate(defn.disks):
        if not storage.supports_snapshots(disk):
            raise UserError(f"disk{i} of VM {defn.name} ({disk.describe()}) is a raw file: "
                            "raw files have no snapshots",
                            hint=f"convert it: qemu-img convert -O qcow2 {disk.path} NEW.qcow2, "
                                 "then recreate the VM with the qcow2")


def _missing(defn: VMDefinition, snap: str) -> list[int]:
    return [i for i, d in enumerate(defn.disks) if snap not in storage.snapshot_names(d)]


@contextlib.contextmanager
def _frozen(state: StateDir, name: str):
    """Freeze the guest's filesystems while snapshotting, when its agent answers."""
    rt = state.runtime(name)
    if not supervisor.agent_answers(rt):
        yield False
        return
    with GuestAgent.connect(rt.qga, timeout=30) as ga:
        ga.execute("guest-fsfreeze-freeze")
        try:
            yield True
        finally:
            ga.execute("guest-fsfreeze-thaw")


def create(state: StateDir, name: str, snap: str) -> str:
    defn = vms.load(state, name)
    names.snapshot_name(snap)
    _check_disks(defn)
    if len(_missing(defn, snap)) != len(defn.disks):
        raise UserError(f"VM {name} already has a snapshot {snap!r}",
                        hint="choose another name or delete the old one first")
    if not supervisor.is_running(state, name):
        for disk in defn.disks:
            storage.snapshot_offline("create", disk, snap)
        return f"created snapshot {snap} of VM {name} (stopped, {len(defn.disks)} disk(s))"
    with _frozen(state, name) as frozen, QMP.connect(state.runtime(name).qmp) as q:
        for i, disk in enumerate(defn.disks):
            if isinstance(disk, RbdDisk):
                storage.snapshot_offline("create", disk, snap)
            else:
                q.execute("blockdev-snapshot-internal-sync", device=f"disk{i}", name=snap)
    how = "filesystems frozen by the guest agent" if frozen else "crash-consistent, no guest agent"
    return f"created snapshot {snap} of running VM {name} ({how})"


def listing(state: StateDir, name: str) -> list[dict]:
    """[{'name', 'date', 'protected', 'disks': 'all' | 'disk0,...'}]"""
    defn = vms.load(state, name)
    seen: dict[str, dict] = {}
    for i, disk in enumerate(defn.disks):
        for s in storage.snapshot_details(disk):
            row = seen.setdefault(s["name"], {**s, "disks": []})
            row["disks"].append(f"disk{i}")
            row["protected"] = row["protected"] or s["protected"]
    for row in seen.values():
        row["disks"] = "all" if len(row["disks"]) == len(defn.disks) else ",".join(row["disks"])
    return list(seen.values())


def rollback(state: StateDir, name: str, snap: str) -> str:
    defn = vms.load(state, name)
    names.snapshot_name(snap)
    vms.require_stopped(state, name, "roll back a snapshot")
    _check_disks(defn)
    missing = _missing(defn, snap)
    if missing:
        raise UserError(f"VM {name} has no snapshot {snap!r}"
                        + (f" on disk{missing[0]}" if len(missing) < len(defn.disks) else ""),
                        hint=f"list them: hypercore vm snapshot list {name}")
    for disk in rbd_claims.rbd_disks(defn):  # open on another node: QEMU there would hand librbd the lock
        rbd_claims.require_unused(disk, "roll back", name)
    for disk in defn.disks:
        storage.snapshot_offline("apply", disk, snap)
    return f"rolled VM {name} back to snapshot {snap}"


def delete(state: StateDir, name: str, snap: str) -> str:
    defn = vms.load(state, name)
    names.snapshot_name(snap)
    missing = _missing(defn, snap)
    if len(missing) == len(defn.disks):
        raise UserError(f"VM {name} has no snapshot {snap!r}",
                        hint=f"list them: hypercore vm snapshot list {name}")
    for disk in defn.disks:
        if isinstance(disk, RbdDisk):
            for s in sr.snapshots(disk.spec, disk.user, disk.conf):
                if s["name"] == snap and str(s.get("protected")) == "true":
                    kids = sr.children(disk.spec, snap, disk.user, disk.conf)
                    raise UserError(f"snapshot {snap} of {disk.spec} is protected"
                                    + (f" and has clones: {', '.join(kids)}" if kids else ""),
                                    hint="delete the clones, then: rbd snap unprotect "
                                         f"{disk.spec}@{snap}")
    running = supervisor.is_running(state, name)
    q = QMP.connect(state.runtime(name).qmp) if running else None
    try:
        for i, disk in enumerate(defn.disks):
            if i in missing:
                continue
            if running and isinstance(disk, FileDisk):
                q.execute("blockdev-snapshot-delete-internal-sync", device=f"disk{i}", name=snap)
            else:
                storage.snapshot_offline("delete", disk, snap)
    finally:
        if q:
            q.close()
    return f"deleted snapshot {snap} of VM {name}"
