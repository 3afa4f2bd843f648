"""Gather the raw probe outputs from this machine (the thin, impure half of
the probe; probe.parse_machine turns them into the machine dict).

Only reads: lsblk, sfdisk -J, wipefs --no-act, findmnt, ip, /sys and /dev.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypercore.run import run

from .probe import DISK_TYPES, LSBLK_COLUMNS, _flat, parse_machine

SYS = Path("/sys")
LIVE_MARKER = Path("/etc/hypercore/live")


def _json(argv: list[str]) -> dict | list | None:
    proc = run(argv, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return json.loads(proc.stdout)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _wipefs(disk: dict) -> dict:
    """Signatures on a disk and its partitions, or {"error": why} if unreadable."""
    devices = [f"/dev/{x['kname']}" for x in _flat(disk) if x.get("type") in ("part", *DISK_TYPES)]
    proc = run(["wipefs", "--no-act", "-J", *devices], check=False)
    if proc.returncode != 0:
        lines = (proc.stderr or "").strip().splitlines()
        return {"error": lines[-1] if lines else f"wipefs exit {proc.returncode}"}
    return json.loads(proc.stdout) if proc.stdout.strip() else {"signatures": []}


def _holders(knames: list[str]) -> dict[str, list[str]]:
    out = {}
    for kname in knames:
        # /sys/class/block/X works for disks and partitions alike.
        d = SYS / "class/block" / kname / "holders"
        try:
            held = sorted(os.listdir(d))
        except OSError:
            continue
        if held:
            out[kname] = held
    return out


def _links(knames: set[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    by_id = Path("/dev/disk/by-id")
    if not by_id.is_dir():
        return out
    for link in by_id.iterdir():
        target = os.path.basename(os.path.realpath(link))
        if target in knames:
            out.setdefault(target, []).append(str(link))
    return out


def _nics() -> dict[str, dict]:
    out = {}
    net = SYS / "class/net"
    for dev in sorted(net.iterdir()) if net.is_dir() else []:
        driver = dev / "device/driver"
        out[dev.name] = {
            "address": _read(dev / "address"),
            "operstate": _read(dev / "operstate"),
            "type": _read(dev / "type"),
            "driver": os.path.basename(os.path.realpath(driver)) if driver.exists() else None,
            "virtual": not (dev / "device").exists(),
        }
    return out


def collect_raw() -> dict:
    """Every raw output parse_machine needs, from this machine."""
    lsblk = _json(["lsblk", "-J", "-b", "-o", LSBLK_COLUMNS]) or {"blockdevices": []}
    devs = [d for d in lsblk.get("blockdevices", []) if d.get("type") in DISK_TYPES and d.get("size")]
    all_knames = [x["kname"] for d in devs for x in _flat(d)]
    sfdisk = {d["kname"]: _json(["sfdisk", "-J", d.get("path") or f"/dev/{d['kname']}"]) for d in devs}
    wipefs = {d["kname"]: _wipefs(d) for d in devs}
    root = _json(["findmnt", "-J", "-n", "-o", "SOURCE,MAJ:MIN", "/"]) or {}
    fs = (root.get("filesystems") or [{}])[0]
    return {
        "lsblk": lsblk,
        "sfdisk": sfdisk,
        "wipefs": wipefs,
        "holders": _holders(all_knames),
        "links": _links(set(all_knames)),
        "root": {"source": fs.get("source"), "majmin": fs.get("maj:min")},
        "live": LIVE_MARKER.exists(),
        "nics": _nics(),
        "ip_addr": _json(["ip", "-j", "addr"]) or [],
    }


def collect_machine() -> dict:
    """The machine dict of this machine."""
    return parse_machine(collect_raw())
