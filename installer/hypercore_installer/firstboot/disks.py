"""Which block devices become OSDs, and whether one already is. Pure: works
on install.json, `lsblk -J` and `ceph-volume lvm list --format json`.

Device names (sdb, nvme1n1) can change from one boot to the next, so a disk
is named by its /dev/disk/by-id link when it has one, and otherwise found by
the serial number and WWN the installer recorded."""

from __future__ import annotations

from dataclasses import dataclass

from hypercore.errors import UserError


@dataclass(frozen=True)
class OsdDisk:
    path: str           # what ceph-volume is given: a by-id link when there is one
    serial: str | None
    recorded: str       # the installer's name for it (for messages)


def _lsblk_disks(lsblk: dict) -> list[dict]:
    return [d for d in (lsblk or {}).get("blockdevices") or [] if d.get("type", "disk") == "disk"]


def resolve_osd_disks(record: dict | None, answers: dict, lsblk: dict, exists) -> list[OsdDisk]:
    """The OSD disks of this node, from install.json's `disks.osd` (resolved
    by the installer); `exists(path)` tells which device links are present."""
    recorded = ((record or {}).get("disks") or {}).get("osd")
    if recorded is None:
        return _from_answers(answers, lsblk, exists)
    out = []
    for disk in recorded:
        links = [link for link in disk.get("links") or [] if link.startswith("/dev/disk/by-id/")]
        # Prefer the stable names (wwn-, then the transport's own) the kernel still has.
        present = sorted((link for link in links if exists(link)),
                         key=lambda link: (not link.rsplit("/", 1)[1].startswith("wwn-"), link))
        if present:
            out.append(OsdDisk(present[0], disk.get("serial"), disk.get("path") or present[0]))
            continue
        found = _by_identity(disk, lsblk)
        if found is None:
            raise UserError(
                f"OSD disk {disk.get('path')} (serial {disk.get('serial') or '?'}, "
                f"wwn {disk.get('wwn') or '?'}) from the install record is not on this machine",
                hint="plug the disk back in, or correct disks.osd in /etc/hypercore/install.json")
        out.append(OsdDisk(found, disk.get("serial"), disk.get("path") or found))
    return out


def _by_identity(disk: dict, lsblk: dict) -> str | None:
    serial, wwn = disk.get("serial"), disk.get("wwn")
    for dev in _lsblk_disks(lsblk):
        if wwn and (dev.get("wwn") or "").lower() == wwn.lower():
            return dev["path"]
        if serial and dev.get("serial") == serial:
            return dev["path"]
    if not serial and not wwn:
        # Nothing to identify it by: the recorded path is all there is.
        for dev in _lsblk_disks(lsblk):
            if dev.get("path") == disk.get("path"):
                return dev["path"]
    return None


def _from_answers(answers: dict, lsblk: dict, exists) -> list[OsdDisk]:
    """No install record (a node set up by hand): plain paths from the answers."""
    out = []
    for i, ref in enumerate((answers.get("ceph") or {}).get("osd_disks") or []):
        path = ref if isinstance(ref, str) else ref.get("path")
        if not path:
            raise UserError(f"ceph.osd_disks[{i}] is a match and there is no install record to resolve it",
                            hint="name the disk by path (/dev/disk/by-id/...) or reinstall with hypercore-install")
        if not exists(path):
            raise UserError(f"ceph.osd_disks[{i}]: there is no disk {path}",
                            hint="check the path with lsblk or ls /dev/disk/by-id/")
        serial = next((d.get("serial") for d in _lsblk_disks(lsblk) if d.get("path") == path), None)
        out.append(OsdDisk(path, serial, path))
    return out


@dataclass(frozen=True)
class LvmOsd:
    osd_id: int
    osd_fsid: str
    cluster_fsid: str


def osds_on_device(lvm_list: dict, device: str) -> list[LvmOsd]:
    """The OSDs `ceph-volume lvm list --format json` shows on `device`
    (its kernel path, e.g. /dev/vdb, or a partition of it)."""
    found = []
    for osd_id, volumes in (lvm_list or {}).items():
        for vol in volumes or []:
            devices = vol.get("devices") or []
            if vol.get("type") not in (None, "block"):
                continue
            if any(d == device or _is_partition_of(d, device) for d in devices):
                tags = vol.get("tags") or {}
                found.append(LvmOsd(int(osd_id), tags.get("ceph.osd_fsid", ""),
                                    tags.get("ceph.cluster_fsid", "")))
    return found


def _is_partition_of(part: str, disk: str) -> bool:
    rest = part[len(disk):] if part.startswith(disk) else ""
    return bool(rest) and (rest.isdigit() or (rest.startswith("p") and rest[1:].isdigit()))
