"""build_plan(answers, machine) -> Plan: a pure function.

It resolves the disks, refuses everything unsafe (all refusals at once, as
PlanRefused), and lists the steps apply will run, in order. It runs nothing
and reads nothing but its arguments.
"""

from __future__ import annotations

from . import layout, netsource
from .answers import disk_refs
from .netsource import is_url
from .model import Plan, PlanRefused, Refusal, Step
from .probe import LIVE_PARTLABEL, data_signatures, describe_signature, partition_path
from .selectors import find_by_path, resolve
from .layout import ANSWERS_LABEL
from .sizes import human




def _summary(disk: dict) -> dict:
    keys = ("path", "name", "model", "serial", "wwn", "size", "transport", "links")
    return {k: disk.get(k) for k in keys}


# --- the installation source ----------------------------------------------

def _source(machine: dict, source_path: str | None) -> tuple[dict | None, list[Refusal]]:
    if is_url(source_path):
        # Network install: the collector fetched the description (netsource.describe_url).
        found = machine.get("network_source")
        if not found or found.get("path") != source_path:
            return None, [Refusal("source", f"no description of {source_path} was fetched",
                                  "run on the machine being installed (it fetches URL.json)")]
        if not found.get("sha256"):
            return None, [Refusal("source", f"no SHA-256 to check the image {source_path} against",
                                  f"boot the appliance menu's install entry ({netsource.SHA_KEY}=)")]
        return found, []
    if source_path:
        disk = find_by_path(machine, source_path)
        why = "--source-disk"
        if disk is None:
            return None, [Refusal("--source-disk", f"there is no disk {source_path} on this machine",
                                  "give the whole-disk device that holds the Hypercore image", source_path)]
    else:
        media = [d for d in machine["disks"] if d.get("boot_medium")]
        why = "the boot medium"
        if len(media) != 1:
            what = ("this system did not boot from a disk (no boot medium found)" if not media else
                    f"several disks look like the boot medium: {', '.join(d['path'] for d in media)}")
            return None, [Refusal("source", what, "name the disk holding the Hypercore image with --source-disk, "
                                  "or network-boot the appliance menu's install entry (hypercore.source=URL)")]
        disk = media[0]
    parts = [p for p in disk["partitions"] if p.get("start") is not None and p.get("sectors")]
    # An operator may add a filesystem labelled HYPERCORE (the answer file) after
    # the image on the stick: it is not part of the image and is not copied.
    answers_parts = [p for p in parts if (p.get("fs_label") or "").upper() == ANSWERS_LABEL]
    parts = [p for p in parts if p not in answers_parts]
    esp = [p for p in parts if p.get("type") == layout.ESP_TYPE]
    root = [p for p in parts if p.get("type") == layout.ROOT_TYPE]
    problems = []
    if (disk.get("partition_table") or {}).get("type") != "gpt" or not esp or not root:
        problems.append("it has no GPT with an EFI system partition and an x86-64 root partition")
    elif root[0].get("fstype") != "ext4":
        problems.append(f"its root partition holds {root[0].get('fstype') or 'no filesystem'}, not ext4")
    elif root[0]["start"] != max(p["start"] for p in parts):
        problems.append("its root partition is not the last partition, so it cannot be grown")
    if disk.get("logical_sector_size", 512) != layout.SECTOR:
        problems.append(f"it has {disk['logical_sector_size']}-byte sectors (the image uses 512)")
    if problems:
        return None, [Refusal("source", f"{disk['path']} is not a Hypercore image: {problems[0]}",
                              "boot the Hypercore USB stick, or point --source-disk at a disk written "
                              "with hypercore.raw", disk["path"])]
    keep = ("number", "path", "start", "sectors", "type", "uuid", "fstype", "fs_uuid", "partlabel")
    partitions = [{k: p.get(k) for k in keep} for p in parts]
    by_number = {p["number"]: p for p in partitions}
    return {
        "path": disk["path"], "name": disk["name"], "why": why,
        "disk_id": (disk.get("partition_table") or {}).get("id"),
        "partitions": partitions,
        "esp": by_number[esp[0]["number"]], "root": by_number[root[0]["number"]],
        "last_number": max(p["number"] for p in partitions),
        "not_copied": sorted(p["number"] for p in answers_parts),
        "image_bytes": layout.image_end(partitions) * layout.SECTOR,
    }, []


# --- safety checks on each disk -------------------------------------------

def _disk_refusals(where: str, disk: dict, *, wipe: bool, min_size: int, min_why: str,
                   source: dict | None) -> list[Refusal]:
    out, path = [], disk["path"]

    def refuse(what, hint):
        out.append(Refusal(where, what, hint, path))

    if disk.get("boot_medium"):
        refuse(f"is the boot medium: {disk.get('boot_medium_reason') or 'this system runs from it'}",
               "choose another disk; the disk the installer runs from is never written")
        return out
    if source and disk["path"] == source["path"]:
        refuse("is the installation source (--source-disk)", "choose another disk")
        return out
    if disk.get("probe_error"):
        refuse(f"could not be read: {disk['probe_error']}", "check the disk and its cabling, or choose another disk")
    if disk.get("read_only"):
        refuse("is read-only", "remove its write protection, or choose another disk")
    mounts = [m for m in disk.get("mounts", []) if m["mountpoint"] != "[SWAP]"]
    swaps = [m["device"] for m in disk.get("mounts", []) if m["mountpoint"] == "[SWAP]"]
    if mounts:
        where_mounted = ", ".join(f"{m['device']} at {m['mountpoint']}" for m in mounts)
        refuse(f"is in use: mounted ({where_mounted})",
               "unmount it first (umount " + " ".join(m["mountpoint"] for m in mounts)
               + "), or choose another disk")
    if swaps:
        refuse(f"is in use: active swap on {', '.join(swaps)}",
               "turn it off first (swapoff " + " ".join(f"/dev/{d}" for d in swaps) + "), or choose another disk")
    if disk.get("holders"):
        held = ", ".join(f"{h['device']} by {h['holder']}"
                         + (f" ({h.get('holder_name')}, {h.get('holder_type')})" if h.get("holder_name") else "")
                         for h in disk["holders"])
        refuse(f"is in use: held by another device ({held})",
               "stop what holds it first (vgchange -an VG for LVM, mdadm --stop /dev/mdX for RAID, "
               "cryptsetup close NAME), or choose another disk")
    sigs = data_signatures(disk)
    if sigs and not wipe:
        refuse("holds data: " + ", ".join(describe_signature(s) for s in sigs),
               "set `wipe: true` in the answer file to erase it, or choose another disk")
    size = disk.get("size") or 0
    if size < min_size:
        refuse(f"is too small: {human(size)}, {min_why} needs at least {human(min_size)}",
               "choose a larger disk")
    return out


# --- the plan ---------------------------------------------------------------

def build_plan(answers: dict, machine: dict, source_path: str | None = None) -> Plan:
    """The ordered install steps for answers on machine, or PlanRefused."""
    refusals: list[Refusal] = []
    source, problems = _source(machine, source_path)
    refusals += problems
    wipe = bool(answers.get("wipe", False))
    data_disks_named = bool((answers.get("data") or {}).get("disks"))

    resolved: list[tuple[str, dict]] = []
    for where, ref in disk_refs(answers):
        disk, refusal = resolve(ref, machine, where)
        if refusal:
            refusals.append(refusal)
        else:
            resolved.append((where, disk))

    first_use: dict[str, str] = {}
    for where, disk in resolved:
        if disk["path"] in first_use:
            refusals.append(Refusal(where, f"is already used as {first_use[disk['path']]}",
                                    "give every disk one role only: target, data or Ceph OSD", disk["path"]))
            continue
        first_use[disk["path"]] = where
        if where == "target":
            min_size = layout.min_target_size(source, not data_disks_named) if source else layout.MIN_TARGET
            why = "the system" + ("" if data_disks_named else " plus a 2 GiB data partition")
        elif where.startswith("data."):
            min_size, why = layout.MIN_DATA_DISK, "a data disk"
        else:
            min_size, why = layout.MIN_OSD, "a Ceph OSD"
        refusals += _disk_refusals(where, disk, wipe=wipe, min_size=min_size, min_why=why, source=source)

    target = next((d for w, d in resolved if w == "target"), None)
    geometry = None
    if source and target and not any(r.where == "target" for r in refusals):
        if target.get("logical_sector_size", 512) != layout.SECTOR:
            refusals.append(Refusal("target", f"has {target['logical_sector_size']}-byte sectors; the image "
                                    "is laid out for 512-byte sectors", "choose a disk with 512-byte "
                                    "(or 512e) sectors", target["path"]))
        else:
            try:
                geometry = layout.geometry(source, target["size"], not data_disks_named,
                                           answers["target"].get("root_size"))
            except ValueError as e:
                refusals.append(Refusal("target", f"is {e}", "choose a larger disk or add `data:` disks",
                                        target["path"]))
    if refusals:
        order = ["source", "--source-disk", *(w for w, _ in disk_refs(answers))]
        raise PlanRefused(sorted(refusals, key=lambda r: order.index(r.where) if r.where in order else len(order)))

    data = [d for w, d in resolved if w.startswith("data.")]
    osds = [d for w, d in resolved if w.startswith("ceph.")]
    steps = _steps(answers, machine, source, target, geometry, data, osds)
    disks = {"target": [_summary(target)]}
    if data:
        disks["data"] = [_summary(d) for d in data]
    disks["ceph osd"] = [_summary(d) for d in osds]
    return Plan(target=_summary(target), source=source, disks=disks, steps=tuple(steps))


def _wipe_step(disk: dict, role: str) -> Step:
    return Step(f"wipe-{role}-{disk['name']}", "wipe-disk",
                f"erase old signatures on {disk['path']} ({role}): "
                + ", ".join(describe_signature(s) for s in data_signatures(disk)),
                True, (disk["path"],),
                {"disk": disk["path"], "size": disk["size"],
                 "regions": [{"partition": p["path"], "offset": p["start"] * disk.get("logical_sector_size", 512),
                              "size": p["size"]} for p in disk["partitions"]
                             if p.get("start") is not None and p.get("size")]})


def _steps(answers, machine, source, target, geometry, data, osds) -> list[Step]:
    t = target["path"]
    root_part = partition_path(t, source["root"]["number"])
    esp_part = partition_path(t, source["esp"]["number"])
    sys_params = {"root": root_part, "esp": esp_part}
    steps: list[Step] = []
    if data_signatures(target) or target["partitions"]:
        steps.append(_wipe_step(target, "target"))
    steps += [
        Step("copy-image", "copy-image",
             f"copy the Hypercore image ({human(source['image_bytes'])}) from {source['path']} to {t}",
             True, (t,), {"source": source["path"], "target": t, "bytes": source["image_bytes"],
                          "partitions": source["partitions"],
                          **({"sha256": source["sha256"]} if is_url(source["path"]) else {})}),
        Step("new-partition-ids", "new-partition-ids",
             f"move the GPT backup header to the end of {t}; new random disk and partition GUIDs",
             False, (t,), {"target": t, "numbers": [p["number"] for p in source["partitions"]],
                           "relabel": [p["number"] for p in source["partitions"]
                                       if p.get("partlabel") == LIVE_PARTLABEL],
                           "delete": source.get("not_copied", [])}),
        Step("new-filesystem-ids", "new-filesystem-ids",
             f"check the copied filesystems; new filesystem UUIDs on {esp_part} and {root_part}",
             False, (esp_part, root_part), dict(sys_params)),
        Step("fix-boot-references", "fix-boot-references",
             "point the boot loader configuration at the new root partition GUID",
             False, (esp_part, root_part), {**sys_params, "source": source}),
        Step("grow-root", "grow-root",
             f"grow the root partition {root_part} and its filesystem to "
             f"{human(geometry['root_sectors'] * layout.SECTOR)}",
             False, (t,), {**sys_params, "target": t, "number": source["root"]["number"],
                           "sectors": geometry["root_sectors"]}),
    ]
    if geometry["data"]:
        g = geometry["data"]
        steps.append(Step("add-data-partition", "add-data-partition",
                          f"add the data partition {partition_path(t, g['number'])} "
                          f"({human(g['sectors'] * layout.SECTOR)}) on the rest of {t}",
                          False, (t,), {"target": t, **g, "path": partition_path(t, g["number"])}))
        data_devices = [partition_path(t, g["number"])]
    else:
        for d in data:
            if data_signatures(d) or d["partitions"]:
                steps.append(_wipe_step(d, "data"))
        data_devices = [d["path"] for d in data]

    net = answers.get("network") or {"mode": "dhcp"}
    root_cfg = answers.get("root") or {}
    steps += [
        Step("configure-identity", "configure-identity",
             f"set hostname {answers['hostname']}, time zone {answers.get('timezone', 'UTC')}, a fresh "
             "machine-id; drop the live medium's SSH host keys and random seeds",
             False, (root_part, esp_part),
             {**sys_params, "hostname": answers["hostname"], "timezone": answers.get("timezone", "UTC"),
              "network": net}),
        Step("configure-network", "configure-network",
             "write the systemd-networkd configuration (" + _net_summary(net) + ")",
             False, (root_part,), {**sys_params, "network": net}),
        Step("configure-root-login", "configure-root-login",
             "set root's login: " + ", ".join(
                 x for x in (f"{len(root_cfg.get('ssh_keys') or [])} SSH key(s) in /root/.ssh/authorized_keys"
                             if root_cfg.get("ssh_keys") else None,
                             "password hash in /etc/shadow" if root_cfg.get("password_hash") else
                             "password login locked") if x),
             False, (root_part,), {**sys_params, "ssh_keys": root_cfg.get("ssh_keys") or [],
                                   "password_hash": root_cfg.get("password_hash")}),
        Step("remove-live-bits", "remove-live-bits",
             "remove the live marker /etc/hypercore/live and the serial-console autologin",
             False, (root_part,), dict(sys_params)),
        Step("save-answers", "save-answers",
             "save the answers for the first-boot Ceph bootstrap in /etc/hypercore/answers.yaml (0600)",
             False, (root_part,), {**sys_params, "answers": answers,
                                   "disks": {"target": _summary(target), "data": [_summary(d) for d in data],
                                             "osd": [_summary(d) for d in osds]}}),
        Step("make-data-filesystem", "make-data-filesystem",
             f"create the BTRFS data filesystem on {', '.join(data_devices)}",
             bool(data), tuple(data_devices),
             {"devices": data_devices, "profile": (answers.get("data") or {}).get("profile", "single")}),
        Step("make-subvolumes", "make-subvolumes",
             "create the subvolumes " + ", ".join(layout.subvolumes()),
             False, (data_devices[0],), {"device": data_devices[0], "subvolumes": layout.subvolumes()}),
        Step("move-var-lib", "move-var-lib",
             f"copy the installed system's /var/lib into {layout.VAR_LIB_SUBVOLUME}; mount it at /var/lib "
             f"and its shared folder at {layout.SHARED_MOUNT} (nosuid,nodev) at every boot (/etc/fstab)",
             False, (root_part, data_devices[0]), {**sys_params, "device": data_devices[0]}),
    ]
    if (answers.get("netboot") or {}).get("enabled") and not is_url(source["path"]):
        raw = f"/var/lib/{layout.NETBOOT_DIR}/{netsource.IMAGE_NAME}"
        steps.append(Step("keep-image", "keep-image",
                          f"keep this image ({human(source['image_bytes'])}, sparse) as {raw} for "
                          "network installs of client machines (netboot is enabled)",
                          False, (data_devices[0],),
                          {"device": data_devices[0], "source": source["path"], "bytes": source["image_bytes"],
                           "name": netsource.IMAGE_NAME, "description": netsource.description(source)}))
    for d in osds:
        if data_signatures(d) or d["partitions"]:
            steps.append(_wipe_step(d, "osd"))
    steps.append(Step("finish", "finish", "flush all writes to the disks", False, (t,), {"target": t}))
    return steps


def _net_summary(net: dict) -> str:
    where = f" on {net['interface']}" if net.get("interface") else " on every wired interface"
    if net.get("mode") == "static":
        return f"static {net.get('address')} via {net.get('gateway', 'no gateway')}{where}"
    return "DHCP" + where
