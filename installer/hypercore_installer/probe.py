"""The machine as data: a pure parser from recorded command outputs.

`parse_machine(raw)` turns the outputs gathered by collect.py (lsblk, sfdisk,
wipefs, /sys holders, findmnt, /sys/class/net, ip addr) into the machine dict
that `hypercore-install probe` prints and the planner reads. It runs no
command and reads no file, so tests feed it recorded outputs.

Raw outputs (all JSON-able):
  lsblk     `lsblk -J -b -o LSBLK_COLUMNS` output
  sfdisk    {kname: `sfdisk -J /dev/kname` output, or null without a table}
  wipefs    {disk kname: `wipefs --no-act -J` over the disk and its partitions,
            or {"error": message} when the disk could not be read}
  holders   {kname: [holder knames]} from /sys/block/*/holders and partitions
  links     {kname: [/dev/disk/by-id/... links]}
  root      {"source": ..., "majmin": ...} of the mount at / (findmnt)
  live      whether /etc/hypercore/live exists (this is the live medium)
  nics      {name: {"address", "operstate", "driver", "virtual", "type"}}
  ip_addr   `ip -j addr` output
"""

from __future__ import annotations

LSBLK_COLUMNS = ("NAME,KNAME,PATH,PKNAME,TYPE,MAJ:MIN,SIZE,START,RO,RM,HOTPLUG,ROTA,"
                 "LOG-SEC,PHY-SEC,MODEL,VENDOR,SERIAL,WWN,TRAN,FSTYPE,UUID,LABEL,"
                 "PARTTYPE,PARTUUID,PARTLABEL,PTTYPE,PTUUID,MOUNTPOINTS")

# Partition label that marks a live medium even when / is not on it
# (e.g. a RAM or overlay root); the image may label its ESP so.
LIVE_PARTLABEL = "hypercore-live"

DISK_TYPES = ("disk", "loop")
MEMORY_DISKS = ("zram", "ram")   # RAM-backed "disks" are never install targets
PARTITION_TABLE_SIGNATURES = ("gpt", "PMBR", "dos")


def _s(value):
    """lsblk pads some strings (model, serial) with spaces; None stays None."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _flat(dev: dict) -> list[dict]:
    out = [dev]
    for child in dev.get("children") or []:
        out += _flat(child)
    return out


def _mountpoints(dev: dict) -> list[str]:
    return [m for m in (dev.get("mountpoints") or [dev.get("mountpoint")]) if m]


def _signatures(wipefs: dict, knames: set[str]) -> list[dict]:
    out, seen = [], set()
    for sig in (wipefs or {}).get("signatures", []):
        dev = sig.get("device", "").removeprefix("/dev/")
        key = (dev, sig.get("type"))
        if dev in knames and key not in seen:
            seen.add(key)
            out.append({"device": dev, "type": sig.get("type"), "uuid": sig.get("uuid"),
                        "label": sig.get("label"), "offset": sig.get("offset")})
    return out


def _fs_of(sigs: list[dict], kname: str) -> dict | None:
    for sig in sigs:
        if sig["device"] == kname and sig["type"] not in PARTITION_TABLE_SIGNATURES:
            return sig
    return None


def _partition_number(kname: str, disk_kname: str) -> int | None:
    tail = kname[len(disk_kname):].lstrip("p")
    return int(tail) if tail.isdigit() else None


def _parse_disk(dev: dict, raw: dict) -> dict:
    kname = dev["kname"]
    flat = _flat(dev)
    parts = [d for d in flat if d.get("type") == "part" and d.get("pkname") == kname]
    knames = {d["kname"] for d in flat}
    wipefs = (raw.get("wipefs") or {}).get(kname) or {}
    sigs = _signatures(wipefs, knames)
    table = (raw.get("sfdisk") or {}).get(kname)
    table = (table or {}).get("partitiontable")
    sector = dev.get("log-sec") or 512

    by_node = {}
    for p in (table or {}).get("partitions", []):
        by_node[p["node"].rsplit("/", 1)[-1]] = p

    partitions = []
    for p in parts:
        pk = p["kname"]
        entry = by_node.get(pk, {})
        fs = _fs_of(sigs, pk)
        start = entry.get("start", p.get("start"))
        size = p.get("size")
        partitions.append({
            "path": p.get("path") or f"/dev/{pk}",
            "name": pk,
            "number": _partition_number(pk, kname),
            "start": start,
            "sectors": entry.get("size", size // sector if size else None),
            "size": size,
            "type": (entry.get("type") or _s(p.get("parttype")) or "").lower() or None,
            "uuid": (entry.get("uuid") or _s(p.get("partuuid")) or "").lower() or None,
            "partlabel": entry.get("name", _s(p.get("partlabel"))),
            "fstype": fs["type"] if fs else _s(p.get("fstype")),
            "fs_uuid": fs["uuid"] if fs else _s(p.get("uuid")),
            "fs_label": fs["label"] if fs else _s(p.get("label")),
            "mountpoints": _mountpoints(p),
        })
    partitions.sort(key=lambda p: (p["number"] is None, p["number"] or 0))

    mounts = [{"device": d["kname"], "mountpoint": m} for d in flat for m in _mountpoints(d)]
    holders = []
    for d in flat:
        for h in (raw.get("holders") or {}).get(d["kname"], []):
            holders.append({"device": d["kname"], "holder": h})
    # Stacked devices lsblk shows as children (LVM LVs, md arrays, dm-crypt).
    for d in flat:
        if d.get("type") not in ("part", *DISK_TYPES) and d.get("pkname") in knames:
            if not any(h["holder"] == d["kname"] for h in holders):
                holders.append({"device": d["pkname"], "holder": d["kname"]})
    names = {d["kname"]: (d.get("name"), d.get("type")) for d in flat}
    for h in holders:
        name, typ = names.get(h["holder"], (None, None))
        h["holder_name"], h["holder_type"] = name, typ

    pt = None
    if table:
        pt = {"type": table.get("label"), "id": (table.get("id") or "").lower() or None,
              "first_lba": table.get("firstlba"), "last_lba": table.get("lastlba")}
    elif _s(dev.get("pttype")):
        pt = {"type": _s(dev.get("pttype")), "id": (_s(dev.get("ptuuid")) or "").lower() or None,
              "first_lba": None, "last_lba": None}

    return {
        "path": dev.get("path") or f"/dev/{kname}",
        "name": kname,
        "type": dev.get("type"),
        "size": dev.get("size"),
        "model": _s(dev.get("model")),
        "vendor": _s(dev.get("vendor")),
        "serial": _s(dev.get("serial")),
        "wwn": _s(dev.get("wwn")),
        "transport": _s(dev.get("tran")) or ("loop" if dev.get("type") == "loop" else None),
        "rotational": bool(dev.get("rota")),
        "removable": bool(dev.get("rm")) or bool(dev.get("hotplug")),
        "read_only": bool(dev.get("ro")),
        "logical_sector_size": sector,
        "links": sorted((raw.get("links") or {}).get(kname, [])),
        "partition_table": pt,
        "partitions": partitions,
        "signatures": sigs,
        "mounts": mounts,
        "holders": holders,
        "probe_error": wipefs.get("error"),
        "boot_medium": False,
        "boot_medium_reason": None,
    }


def _mark_boot_medium(disks: list[dict], lsblk_devs: list[dict], raw: dict) -> None:
    root = raw.get("root") or {}
    source, majmin = root.get("source"), root.get("majmin")
    by_kname = {}
    for dev in lsblk_devs:
        for d in _flat(dev):
            by_kname.setdefault(d["kname"], (dev["kname"], d))
    for disk_kname, d in by_kname.values():
        if (majmin and d.get("maj:min") == majmin) or (source and source in (d.get("path"), f"/dev/{d['kname']}")):
            for disk in disks:
                if disk["name"] == disk_kname:
                    disk["boot_medium"] = True
                    disk["boot_medium_reason"] = f"the running system's root filesystem ({source}) is on it"
            return
    # / is not on a block device we know (RAM or overlay root): fall back to the label.
    for disk in disks:
        if any(p.get("partlabel") == LIVE_PARTLABEL for p in disk["partitions"]):
            disk["boot_medium"] = True
            disk["boot_medium_reason"] = f"it has a partition labelled {LIVE_PARTLABEL}"


def _parse_nics(raw: dict) -> list[dict]:
    addrs: dict[str, list[str]] = {}
    for link in raw.get("ip_addr") or []:
        addrs[link.get("ifname")] = [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
                                     if a.get("scope") != "link" and "local" in a]
    nics = []
    for name, info in sorted((raw.get("nics") or {}).items()):
        if name == "lo" or info.get("type") not in (None, 1, "1"):
            continue
        nics.append({
            "name": name,
            "mac": (info.get("address") or "").lower() or None,
            "driver": info.get("driver"),
            "state": info.get("operstate"),
            "virtual": bool(info.get("virtual")),
            "addresses": addrs.get(name, []),
        })
    return nics


def parse_machine(raw: dict) -> dict:
    """The machine dict (disks, NICs, boot medium) from raw probe outputs."""
    devs = (raw.get("lsblk") or {}).get("blockdevices", [])
    disks = [_parse_disk(d, raw) for d in devs
             if d.get("type") in DISK_TYPES and (d.get("size") or 0) > 0
             and not d["kname"].startswith(MEMORY_DISKS)]
    _mark_boot_medium(disks, devs, raw)
    return {
        "version": 1,
        "live": bool(raw.get("live")),
        "root_source": (raw.get("root") or {}).get("source"),
        "disks": sorted(disks, key=lambda d: d["name"]),
        "nics": _parse_nics(raw),
    }


# --- reading a machine dict -----------------------------------------------

SIGNATURE_NAMES = {
    "gpt": "a GPT partition table", "dos": "an MBR partition table",
    "LVM2_member": "an LVM physical volume", "linux_raid_member": "a RAID (mdadm) member",
    "ceph_bluestore": "a Ceph BlueStore OSD", "zfs_member": "a ZFS pool member",
    "crypto_LUKS": "a LUKS encrypted volume", "swap": "a swap area",
    "VMFS_volume_member": "a VMware VMFS volume",
}


def _article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def describe_signature(sig: dict) -> str:
    what = SIGNATURE_NAMES.get(sig["type"]) or _article(f"{sig['type']} filesystem")
    label = f" labelled {sig['label']!r}" if sig.get("label") else ""
    return f"{what}{label} on {sig['device']}"


def data_signatures(disk: dict) -> list[dict]:
    """Signatures that mean the disk holds something (the PMBR goes with its GPT)."""
    return [s for s in disk.get("signatures", []) if s["type"] != "PMBR"]


def partition_path(disk_path: str, number: int) -> str:
    """/dev/sda + 3 -> /dev/sda3; /dev/nvme0n1 + 3 -> /dev/nvme0n1p3."""
    return f"{disk_path}{'p' if disk_path[-1].isdigit() else ''}{number}"
