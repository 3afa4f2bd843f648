"""Linked clones: a new VM whose disks share everything unchanged with a source.

From a VM:     RBD disks: rbd clone of a protected snapshot (SOURCE@SNAP, or a
               'clone-NEW' snapshot made and protected for it). qcow2/raw disks:
               the source disk is frozen into a read-only base in STATE/bases
               and both VMs get a qcow2 overlay on it (the source must be
               stopped). No data is copied: the time does not grow with size.
From an image: rbd clone of IMAGE@golden, or a qcow2 overlay on the image file.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path

from hypercore import definition, images, names, storage, vms
from hypercore import storage_file as sf
from hypercore import storage_rbd as sr
from hypercore.definition import FileDisk, Network, RbdDisk, VMDefinition
from hypercore.errors import UserError
from hypercore.state import StateDir


def _check_rbd_snapshot(disk: RbdDisk, snap: str, source: str) -> None:
    for s in sr.snapshots(disk.spec, disk.user, disk.conf):
        if s["name"] == snap:
            if str(s.get("protected")) != "true":
                raise UserError(f"snapshot {snap} of {disk.spec} (VM {source}) is not protected: "
                                "RBD clones need a protected snapshot",
                                hint=f"protect it: rbd snap protect {disk.spec}@{snap} "
                                     f"(or clone {source} without @SNAPSHOT)")
            return
    raise UserError(f"VM {source} has no snapshot {snap!r} on {disk.spec}",
                    hint=f"list them: hypercore vm snapshot list {source}")


def _plan_vm(state: StateDir, src: VMDefinition, snap: str | None) -> None:
    """Every check before anything changes."""
    file_disks = [d for d in src.disks if isinstance(d, FileDisk)]
    devices = [d.path for d in file_disks if d.is_device]
    if devices:
        raise UserError(f"VM {src.name}'s disk is the block device {devices[0]}: it cannot back a linked clone",
                        hint=f"copy it into an image first: hypercore image import {devices[0]} NAME")
    if snap and file_disks:
        raise UserError(f"VM {src.name} has file disks: a qcow2 internal snapshot cannot back a "
                        "linked clone", hint=f"roll back to {snap} and clone {src.name} itself "
                                             f"(hypercore vm snapshot rollback {src.name} {snap})")
    if file_disks:
        vms.require_stopped(state, src.name, "make a linked clone of its file disks")
        for i, d in enumerate(file_disks):
            found = storage.snapshot_names(d)
            if found:
                raise UserError(f"disk{i} of VM {src.name} has internal snapshots "
                                f"({', '.join(found)}) that a linked clone would freeze out of reach",
                                hint=f"delete them first: hypercore vm snapshot delete {src.name} {found[0]}")
    for d in src.disks:
        if isinstance(d, RbdDisk):
            sr.require_image(d)
            if snap:
                _check_rbd_snapshot(d, snap, src.name)


def _freeze_file(state: StateDir, src: str, i: int, disk: FileDisk) -> tuple[FileDisk, Path]:
    """Make disk a read-only base; return the source's new overlay disk and the base."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if disk.owned:
        base = state.bases / f"{src}-disk{i}-{stamp}.{disk.format}"
        state.bases.mkdir(parents=True, exist_ok=True)
        Path(disk.path).rename(base)
        top = Path(disk.path)
    else:
        base = Path(disk.path)  # the user's file: left where it is, never written again
        top = state.vm_dir(src) / f"disk{i}-{stamp}.qcow2"
    base.chmod(0o444)
    sf.create_overlay(top, base, disk.format)
    return FileDisk(path=str(top), format="qcow2", owned=True), base


def clone_vm(state: StateDir, source: str, snap: str | None, new: str) -> list[str]:
    src = vms.load(state, source)
    _plan_vm(state, src, snap)
    out, src_disks, new_disks = [], [], []
    state.vm_dir(new).mkdir(parents=True)
    for i, disk in enumerate(src.disks):
        if isinstance(disk, RbdDisk):
            use = snap
            if use is None:
                use = f"clone-{new}"
                sr.rbd(sr.snap_argv("create", disk.spec, use, disk.user, disk.conf))
                sr.rbd(sr.snap_argv("protect", disk.spec, use, disk.user, disk.conf))
            target = RbdDisk(pool=disk.pool, image=f"{new}-disk{i}", conf=disk.conf,
                             user=disk.user, owned=True, namespace=disk.namespace)
            sr.rbd(sr.clone_argv(disk.spec, use, target.spec, disk.user, disk.conf))
            src_disks.append(disk)
            new_disks.append(target)
            out.append(f"disk{i}: rbd clone {disk.spec}@{use} -> {target.spec}")
        else:
            top, base = _freeze_file(state, source, i, disk)
            mine = state.vm_dir(new) / f"disk{i}.qcow2"
            sf.create_overlay(mine, base, disk.format)
            src_disks.append(top)
            new_disks.append(FileDisk(path=str(mine), format="qcow2", owned=True))
            out.append(f"disk{i}: qcow2 overlay {mine} on read-only base {base} "
                       f"(VM {source} now writes to {top})")
    if src_disks != list(src.disks):
        definition.save(src.with_disks(src_disks), state.definition(source))
    clone = replace(src, name=new, disks=tuple(new_disks), network=replace(src.network, mac=None))
    definition.save(clone, state.definition(new))
    return out


def clone_image(state: StateDir, image: str, new: str, memory_mb: int, cpus: int) -> list[str]:
    img = images.require(state, image)
    state.vm_dir(new).mkdir(parents=True)
    disk = images.linked_disk(img, new, 0, state)
    definition.save(VMDefinition(name=new, memory_mb=memory_mb, cpus=cpus, disks=(disk,),
                                 network=Network()), state.definition(new))
    return [f"disk0: linked clone of image {image}: {disk.describe()}"]


def clone(state: StateDir, source_arg: str, new: str, memory_mb: int = 1024, cpus: int = 1) -> list[str]:
    names.vm_name(new)
    source, snap = names.split_at_snapshot(source_arg)
    if state.vm_dir(new).exists():
        raise UserError(f"VM {new} already exists", hint="choose another name for the clone")
    started = time.monotonic()
    try:
        if names.VM_NAME.fullmatch(source) and state.definition(source).is_file():
            lines = clone_vm(state, source, snap, new)
            what = f"VM {source_arg}"
        elif names.IMAGE_NAME.fullmatch(source) and images.get(state, source) is not None:
            if snap not in (None, sr.GOLDEN_SNAP):
                raise UserError(f"images have no snapshot {snap!r}", hint=f"clone {source} without @")
            lines = clone_image(state, source, new, memory_mb, cpus)
            what = f"image {source}"
        else:
            raise UserError(f"no VM or image named {source!r} to clone",
                            hint="list them: hypercore vm list; hypercore image list")
    except BaseException:
        if state.vm_dir(new).exists() and not state.definition(new).exists():
            shutil.rmtree(state.vm_dir(new))
        raise
    took = time.monotonic() - started
    return [f"cloned {what} to VM {new} in {took * 1000:.1f} ms (linked, nothing copied)"] + lines
