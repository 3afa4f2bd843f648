"""Steps for the BTRFS data filesystem mounted at /var/lib."""

from __future__ import annotations

import json
import os

from hypercore import digest

from .. import render
from ..layout import DATA_FS_LABEL, NETBOOT_DIR, SECTOR, VAR_LIB_SUBVOLUME
from .context import Context
from .system import drop_random_seed


def make_data_filesystem(ctx: Context, p: dict) -> None:
    devices = p["devices"]
    several = len(devices) > 1
    ctx.runner.run(["mkfs.btrfs", "--force", "--label", DATA_FS_LABEL, "--uuid", ctx.ids["fs:data"],
                    "--metadata", "raid1" if several else "dup", "--data", p["profile"], *devices])
    if several:
        ctx.runner.run(["btrfs", "device", "scan", *devices])


def make_subvolumes(ctx: Context, p: dict) -> None:
    with ctx.mounted(p["device"], "data", "subvolid=5") as top:
        for sub in p["subvolumes"]:
            path = os.path.join(top, sub)
            if not ctx.runner.exists(path):
                ctx.runner.run(["btrfs", "subvolume", "create", path])


def move_var_lib(ctx: Context, p: dict) -> None:
    """Copy the installed root's /var/lib into @var-lib and mount it there at
    every boot. The root's own copy stays underneath the mount, unused."""
    with ctx.mounted(p["root"], "root") as root, \
            ctx.mounted(p["device"], "var-lib", f"subvol={VAR_LIB_SUBVOLUME}") as var_lib:
        ctx.runner.run(["cp", "-a", "--reflink=auto", os.path.join(root, "var/lib") + "/.", var_lib + "/"])
        fstab = os.path.join(root, "etc/fstab")
        existing = ""
        if os.path.isfile(fstab):
            with open(fstab, encoding="utf-8") as f:
                existing = f.read()
        ctx.runner.write_file(fstab, render.fstab_with_var_lib(existing, ctx.ids["fs:data"]))


# What the live system wrote for itself onto its (read-write) root, and its
# ESP's boot random seed: never served to the client network in the kept image.
LIVE_STATE_DIRS = ("var/log/journal",)
LIVE_STATE_FILES = ("var/lib/systemd/random-seed", "var/lib/systemd/credential.secret", "root/.bash_history")


def _region(part: dict) -> tuple[int, int]:
    return part["start"] * SECTOR, part["sectors"] * SECTOR


def _scrub_live_state(ctx: Context, raw: str, root: dict, esp: dict) -> None:
    """Remove the live system's own state from the kept copy: its SSH host
    keys, journal, random seeds and credential secret, each overwritten with
    zeros before it is deleted (a deleted file's blocks keep its bytes, and the
    whole image is served). The copy of a mounted root is checked (its journal
    replayed) first."""
    offset, size = _region(root)
    loop = ctx.runner.run(["losetup", "--find", "--show", "--offset", str(offset), "--sizelimit", str(size),
                           raw]).stdout.strip() or "/dev/loopN"
    try:
        ctx.runner.run(["e2fsck", "-f", "-y", loop], ok=(0, 1))
        with ctx.mounted(loop, "kept-root") as kept:
            shred = ["-type", "f", "-exec", "shred", "--iterations=0", "--zero", "{}", "+"]
            ctx.runner.run(["find", os.path.join(kept, "etc/ssh"), "-maxdepth", "1", "-name", "ssh_host_*", *shred],
                           ok=(0, 1))
            ctx.runner.run(["find", os.path.join(kept, "etc/ssh"), "-maxdepth", "1", "-name", "ssh_host_*",
                            "-delete"], ok=(0, 1))
            for d in LIVE_STATE_DIRS:
                ctx.runner.run(["find", os.path.join(kept, d), *shred], ok=(0, 1))
                ctx.runner.run(["find", os.path.join(kept, d), "-mindepth", "1", "-delete"], ok=(0, 1))
            for f in LIVE_STATE_FILES:
                ctx.runner.run(["find", os.path.join(kept, f), *shred], ok=(0, 1))
                ctx.runner.remove(os.path.join(kept, f))
    finally:
        ctx.runner.run(["losetup", "-d", loop], ok=(0, 1))
    drop_random_seed(ctx, raw, _region(esp)[0])


def keep_image(ctx: Context, p: dict) -> None:
    """Keep the image this node is installed from in the netboot HTTP root
    (sparse, on BTRFS) for network installs: copied from the boot medium opened
    read-only, without the live system's own state; its SHA-256 recorded in
    its description and next to it (the netboot menu's install entry carries it)."""
    source = p["description"]["source"]
    with ctx.mounted(p["device"], "var-lib", f"subvol={VAR_LIB_SUBVOLUME},compress=zstd:1") as var_lib:
        where = os.path.join(var_lib, NETBOOT_DIR)
        ctx.runner.makedirs(where)
        packed = os.path.join(where, p["name"])                 # hypercore.raw.zst
        partial, copy = packed + ".partial", os.path.join(where, ".hypercore.raw.copy")
        # (The copy stays BTRFS-compressed: on a small data partition it and the packed image
        # would not both fit uncompressed.)
        with ctx.runner.frozen(p["source"]):     # a read-only, consistent source: the live root frozen
            ctx.runner.copy_image(p["source"], copy, p["bytes"], source.get("partitions", ()))
        _scrub_live_state(ctx, copy, source["root"], source["esp"])
        sha256 = ctx.runner.pack_image(copy, partial)
        ctx.runner.remove(copy)
        ctx.runner.run(["mv", "-f", partial, packed])
        ctx.runner.write_file(packed + ".json", json.dumps(dict(p["description"], sha256=sha256), indent=1) + "\n")
        ctx.runner.write_file(digest.record_path(packed), digest.record_text(packed, sha256))
