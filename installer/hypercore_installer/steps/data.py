"""Steps for the BTRFS data filesystem mounted at /var/lib."""

from __future__ import annotations

import json
import os

from .. import render
from ..layout import DATA_FS_LABEL, VAR_LIB_SUBVOLUME, NETBOOT_DIR
from .context import Context


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


def keep_image(ctx: Context, p: dict) -> None:
    """Keep the image this node is installed from in the netboot HTTP root
    (sparse, on BTRFS), with its description: the source of network installs."""
    with ctx.mounted(p["device"], "var-lib", f"subvol={VAR_LIB_SUBVOLUME},compress=zstd:1") as var_lib:
        where = os.path.join(var_lib, NETBOOT_DIR)
        ctx.runner.makedirs(where)
        raw = os.path.join(where, p["name"])
        ctx.runner.run(["dd", f"if={p['source']}", f"of={raw}.partial", "bs=4M", f"count={p['bytes']}",
                        "iflag=count_bytes,fullblock", "conv=sparse,fsync", "status=none"])
        ctx.runner.run(["mv", "-f", f"{raw}.partial", raw])
        ctx.runner.write_file(raw + ".json", json.dumps(p["description"], indent=1) + "\n")
