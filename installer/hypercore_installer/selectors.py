"""Resolve the answer file's disk references (a path or a match) against a
machine dict. Pure: no command, no file. A match must select exactly one
disk; several matches are an error listing them, never "the first"."""

from __future__ import annotations

from fnmatch import fnmatchcase

from .model import Refusal, describe_disk
from .sizes import parse_size


def find_by_path(machine: dict, path: str) -> dict | None:
    for disk in machine["disks"]:
        if path == disk["path"] or path in disk.get("links", []):
            return disk
    return None


def _glob(pattern: str, value: str | None) -> bool:
    return value is not None and fnmatchcase(value.lower(), pattern.lower())


def matches(match: dict, disk: dict) -> bool:
    """Whether a disk satisfies every property of a match."""
    if "serial" in match and not _glob(match["serial"], disk.get("serial")):
        return False
    if "model" in match and not _glob(match["model"], disk.get("model")):
        return False
    if "wwn" in match and (disk.get("wwn") or "").lower() != match["wwn"].lower():
        return False
    if "transport" in match and (disk.get("transport") or "").lower() != match["transport"].lower():
        return False
    if "rotational" in match and bool(disk.get("rotational")) != match["rotational"]:
        return False
    size = match.get("size") or {}
    if "min" in size and (disk.get("size") or 0) < parse_size(size["min"]):
        return False
    if "max" in size and (disk.get("size") or 0) > parse_size(size["max"]):
        return False
    return True


def _disk_list(machine: dict) -> str:
    return "; ".join(describe_disk(d) for d in machine["disks"]) or "none"


def resolve(ref: dict, machine: dict, where: str) -> tuple[dict | None, Refusal | None]:
    """(disk, None) when ref names exactly one disk, else (None, refusal)."""
    if "path" in ref:
        path = ref["path"]
        disk = find_by_path(machine, path)
        if disk:
            return disk, None
        for d in machine["disks"]:
            for p in d["partitions"]:
                if p["path"] == path:
                    return None, Refusal(where, f"{path} is a partition of {d['path']}, not a whole disk",
                                         f"name the whole disk: {d['path']}", path)
        return None, Refusal(where, f"there is no disk {path} on this machine",
                             f"disks here: {_disk_list(machine)}", path)
    match = ref["match"]
    hits = [d for d in machine["disks"] if matches(match, d)]
    candidates = [d for d in hits if not d.get("boot_medium")]
    if len(candidates) == 1:
        return candidates[0], None
    shown = ", ".join(f"{k}={v}" for k, v in match.items())
    if not candidates:
        if hits:
            return None, Refusal(where, f"the match ({shown}) selects only the boot medium "
                                        f"{hits[0]['path']}, which is never installed to",
                                 "make the match select the disk you mean; "
                                 "`hypercore-install probe` shows each disk's model, serial and size")
        return None, Refusal(where, f"the match ({shown}) selects no disk",
                             f"disks here: {_disk_list(machine)}")
    return None, Refusal(where, f"the match ({shown}) selects {len(candidates)} disks: "
                                + "; ".join(describe_disk(d) for d in candidates),
                         "make it select exactly one, e.g. add `serial:` (the installer never picks "
                         "the first of several)")
